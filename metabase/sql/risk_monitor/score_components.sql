-- What the latest score of each market is made of: one row per component, largest contribution first.
SELECT
    s.venue,
    s.symbol,
    c.key                                                              AS component,
    round(CASE jsonb_typeof(c.value)
              WHEN 'object' THEN (c.value ->> 'points')::numeric
              WHEN 'number' THEN c.value::text::numeric
          END, 1)::float8                                              AS component_score,
    round(CASE jsonb_typeof(c.value)
              WHEN 'object' THEN (c.value ->> 'value')::numeric
          END, 3)::float8                                              AS component_value,
    s.bucket                                                           AS scored_minute
FROM (
    SELECT DISTINCT ON (r.venue, r.symbol) r.venue, r.symbol, r.bucket, r.components
    FROM ops.risk_scores r
    WHERE r.bucket > now() - {{hours}} * INTERVAL '1 hour'
    [[AND r.venue = {{venue}}]]
    [[AND r.symbol = {{symbol}}]]
    ORDER BY r.venue, r.symbol, r.bucket DESC
) s
CROSS JOIN LATERAL jsonb_each(s.components) c
ORDER BY component_score DESC NULLS LAST, s.venue, s.symbol, component
