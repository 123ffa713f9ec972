-- The latest risk score per market within the window, with the component that contributed most.
SELECT DISTINCT ON (s.venue, s.symbol)
    s.venue,
    s.symbol,
    s.asset,
    round(s.score::numeric, 1)::float8                                         AS score,
    s.top_component,
    round(CASE jsonb_typeof(s.components -> s.top_component)
              WHEN 'object' THEN (s.components -> s.top_component ->> 'points')::numeric
              WHEN 'number' THEN (s.components ->> s.top_component)::numeric
          END, 1)::float8                                                      AS top_component_score,
    s.bucket                                                                   AS scored_minute,
    round(extract(epoch FROM now() - s.bucket)::numeric)::float8               AS score_age_s,
    round(s.spread_bps::numeric, 2)::float8                                    AS spread_bps,
    round(s.divergence_bps::numeric, 2)::float8                                AS divergence_bps,
    round(s.freshness_s::numeric, 1)::float8                                   AS freshness_s
FROM ops.risk_scores s
WHERE s.bucket > now() - {{hours}} * INTERVAL '1 hour'
[[AND s.venue = {{venue}}]]
[[AND s.symbol = {{symbol}}]]
ORDER BY s.venue, s.symbol, s.bucket DESC
