-- One asset across venues: each venue's VWAP per minute, so a venue drifting away from the others shows.
SELECT
    f.bucket            AS minute,
    f.venue,
    f.symbol,
    f.asset,
    f.vwap
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.asset = {{asset}}
  AND f.vwap IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
ORDER BY f.bucket, f.venue
