-- Each market's mid vs the other venues' mid for the same asset, in basis points, per minute.
SELECT
    s.bucket                      AS minute,
    s.venue || ' ' || s.symbol    AS market,
    s.venue,
    s.symbol,
    s.asset,
    round(s.divergence_bps::numeric, 2)::float8 AS divergence_bps
FROM ops.risk_scores s
WHERE s.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND s.divergence_bps IS NOT NULL
[[AND s.venue = {{venue}}]]
[[AND s.symbol = {{symbol}}]]
ORDER BY s.bucket, market
