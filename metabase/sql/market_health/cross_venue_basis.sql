-- One asset across venues: each venue's closing mid vs the mean mid of all venues quoting it that minute,
-- in basis points. Only minutes quoted by at least two venues are shown. The venue and symbol filters do
-- not narrow the reference (it is always every venue), only which lines are drawn.
WITH mids AS (
    SELECT f.bucket, f.venue, f.symbol, f.asset, f.mid_close,
           avg(f.mid_close) OVER (PARTITION BY f.bucket)   AS reference_mid,
           count(*) OVER (PARTITION BY f.bucket)           AS venues_quoting
    FROM ops.features_1m f
    WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
      AND f.asset = {{asset}}
      AND f.mid_close IS NOT NULL
)
SELECT
    m.bucket                                                              AS minute,
    m.venue,
    m.symbol,
    m.asset,
    round(((m.mid_close - m.reference_mid) / m.reference_mid * 1e4)::numeric, 2)::float8 AS basis_bps
FROM mids m
WHERE m.venues_quoting > 1
[[AND m.venue = {{venue}}]]
[[AND m.symbol = {{symbol}}]]
ORDER BY m.bucket, m.venue
