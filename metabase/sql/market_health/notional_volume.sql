-- Traded notional (quote currency) per minute, stacked by market: comparable across venues, unlike base volume.
SELECT
    f.bucket                      AS minute,
    f.venue || ' ' || f.symbol    AS market,
    f.venue,
    f.symbol,
    f.asset,
    round(f.notional::numeric, 0)::float8 AS notional
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.trade_count > 0
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
