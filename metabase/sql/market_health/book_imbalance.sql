-- Mean L1 book imbalance (bid qty - ask qty) / (bid qty + ask qty) per minute; +1 = all bids.
SELECT
    f.bucket                      AS minute,
    f.venue || ' ' || f.symbol    AS market,
    f.venue,
    f.symbol,
    f.asset,
    f.book_imbalance_mean
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.book_imbalance_mean IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
