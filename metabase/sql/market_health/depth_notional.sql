-- Mean L1 depth (bid and ask notional at the touch) per minute and market.
SELECT
    f.bucket                      AS minute,
    f.venue || ' ' || f.symbol    AS market,
    f.venue,
    f.symbol,
    f.asset,
    f.depth_notional_mean
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.depth_notional_mean IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
