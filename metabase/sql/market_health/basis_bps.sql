-- Perp mark vs index (spot) price, mean of the minute in basis points, per market. Margin and
-- liquidations run on the mark: a basis far from 0 means positions are marked off the spot market.
SELECT
    f.bucket                      AS minute,
    f.venue || ' ' || f.symbol    AS market,
    f.venue,
    f.symbol,
    f.asset,
    round(f.basis_bps_mean::numeric, 2)::float8 AS basis_bps_mean,
    round(f.basis_bps_min::numeric, 2)::float8  AS basis_bps_min,
    round(f.basis_bps_max::numeric, 2)::float8  AS basis_bps_max
FROM ops.derivs_features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.basis_bps_mean IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
