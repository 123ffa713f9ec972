-- Open interest change within each minute (last vs first reading), in % of the open interest, per
-- market, so markets of any size compare; the change in contracts and the notional at the mark alongside.
SELECT
    f.bucket                                                   AS minute,
    f.venue || ' ' || f.symbol                                 AS market,
    f.venue,
    f.symbol,
    f.asset,
    round((f.oi_change_pct * 100)::numeric, 4)::float8         AS oi_change_pct,
    f.oi_change,
    round(f.oi_notional::numeric, 0)::float8                   AS oi_notional
FROM ops.derivs_features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.oi_change_pct IS NOT NULL
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
ORDER BY f.bucket, market
