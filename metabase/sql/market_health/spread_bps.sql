-- Mean quoted spread in basis points per minute and market.
SELECT
    f.bucket                      AS minute,
    f.venue || ' ' || f.symbol    AS market,
    f.venue,
    f.symbol,
    f.asset,
    f.spread_bps_mean
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.spread_bps_mean IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
