-- What the latest score of each market is made of: its three largest components (points > 0), largest
-- first; a component with no points says nothing, and every market lists all of them.
SELECT venue, symbol, component, component_score, component_value, scored_minute
FROM (
    SELECT
        s.venue,
        s.symbol,
        c.key                                                          AS component,
        p.component_score,
        p.component_value,
        s.bucket                                                       AS scored_minute,
        row_number() OVER (PARTITION BY s.venue, s.symbol ORDER BY p.component_score DESC, c.key) AS place
    FROM (
        SELECT DISTINCT ON (r.venue, r.symbol) r.venue, r.symbol, r.bucket, r.components
        FROM ops.risk_scores r
        WHERE r.bucket > now() - {{hours}} * INTERVAL '1 hour'
        [[AND r.venue = {{venue}}]]
        [[AND r.symbol = {{symbol}}]]
        ORDER BY r.venue, r.symbol, r.bucket DESC
    ) s
    CROSS JOIN LATERAL jsonb_each(s.components) c
    CROSS JOIN LATERAL (
        SELECT
            round(CASE jsonb_typeof(c.value)
                      WHEN 'object' THEN (c.value ->> 'points')::numeric
                      WHEN 'number' THEN c.value::text::numeric
                  END, 1)::float8                                      AS component_score,
            round(CASE jsonb_typeof(c.value)
                      WHEN 'object' THEN (c.value ->> 'value')::numeric
                  END, 3)::float8                                      AS component_value
    ) p
    WHERE p.component_score > 0
) ranked
WHERE place <= 3
ORDER BY component_score DESC, venue, symbol, component
