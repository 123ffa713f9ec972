-- Risk score per minute and market (0 calm .. 100 act now).
SELECT
    s.bucket                      AS minute,
    s.venue || ' ' || s.symbol    AS market,
    s.venue,
    s.symbol,
    s.score
FROM ops.risk_scores s
WHERE s.bucket > now() - {{hours}} * INTERVAL '1 hour'
[[AND s.venue = {{venue}}]]
[[AND s.symbol = {{symbol}}]]
ORDER BY s.bucket, market
