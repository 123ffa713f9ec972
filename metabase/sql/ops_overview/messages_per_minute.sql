-- Book updates + trades received per minute and market (ops.features_1m sample_count).
SELECT
    f.bucket                         AS minute,
    f.venue || ' ' || f.symbol       AS market,
    f.venue,
    f.symbol,
    f.sample_count                   AS messages
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
ORDER BY f.bucket, market
