-- Share of each minute's seconds that had at least one book update, per market. A dip below 100 %
-- on a liquid market means the feed went quiet or was disconnected; minutes with no data are 0.
WITH markets AS (
    SELECT DISTINCT f.venue, f.symbol
    FROM ops.features_1m f
    WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
    [[AND f.venue = {{venue}}]]
    [[AND f.symbol = {{symbol}}]]
), span AS (
    SELECT min(f.bucket) AS first_minute
    FROM ops.features_1m f
    WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
), minutes AS (
    SELECT generate_series(s.first_minute, date_trunc('minute', now()) - INTERVAL '1 minute',
                           INTERVAL '1 minute') AS minute
    FROM span s
)
SELECT
    mi.minute,
    m.venue || ' ' || m.symbol                                  AS market,
    m.venue,
    m.symbol,
    round(100 * coalesce(f.book_coverage, 0)::numeric, 1)::float8 AS book_coverage_pct
FROM minutes mi
CROSS JOIN markets m
LEFT JOIN ops.features_1m f
       ON f.bucket = mi.minute AND f.venue = m.venue AND f.symbol = m.symbol
      AND f.bucket > now() - {{hours}} * INTERVAL '1 hour'
ORDER BY mi.minute, market
