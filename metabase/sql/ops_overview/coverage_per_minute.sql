-- Share of each minute's seconds that had at least one book update, per market. A dip below 100 %
-- on a liquid market means the feed went quiet or was disconnected; minutes with no data are 0.
-- The features are read once (MATERIALIZED): under the Apache license they are computed live.
WITH f AS MATERIALIZED (
    SELECT f.bucket, f.venue, f.symbol, f.book_coverage
    FROM ops.features_1m f
    WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
      AND f.bucket < date_trunc('minute', now())   -- complete minutes only
    [[AND f.venue = {{venue}}]]
    [[AND f.symbol = {{symbol}}]]
), markets AS (
    SELECT DISTINCT f.venue, f.symbol FROM f
), minutes AS (
    SELECT generate_series((SELECT min(f.bucket) FROM f), date_trunc('minute', now()) - INTERVAL '1 minute',
                           INTERVAL '1 minute') AS minute
)
SELECT
    mi.minute,
    m.venue || ' ' || m.symbol                                  AS market,
    m.venue,
    m.symbol,
    round(100 * coalesce(f.book_coverage, 0)::numeric, 1)::float8 AS book_coverage_pct
FROM minutes mi
CROSS JOIN markets m
LEFT JOIN f ON f.bucket = mi.minute AND f.venue = m.venue AND f.symbol = m.symbol
ORDER BY mi.minute, market
