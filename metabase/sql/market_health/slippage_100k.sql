-- Slippage of the standard market order (TOWER_INGEST_SLIPPAGE_NOTIONAL, 100k quote currency by default)
-- vs mid, bps, per minute and market (ops.depth_features_1m): the worst of the minute either way, the mean
-- buy and sell alongside, and how many samples the held book could not fill (NULL slippage there).
SELECT
    d.bucket                                         AS minute,
    d.venue || ' ' || d.symbol                       AS market,
    d.venue,
    d.symbol,
    d.asset,
    round(d.slip_bps_max::numeric, 3)::float8        AS slip_bps_max,
    round(d.buy_slip_bps_mean::numeric, 3)::float8   AS buy_slip_bps_mean,
    round(d.sell_slip_bps_mean::numeric, 3)::float8  AS sell_slip_bps_mean,
    d.unfillable_samples
FROM ops.depth_features_1m d
WHERE d.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND d.bucket < date_trunc('minute', now())   -- complete minutes only
  AND d.slip_bps_max IS NOT NULL
[[AND d.venue = {{venue}}]]
[[AND d.symbol = {{symbol}}]]
[[AND d.asset = {{asset}}]]
ORDER BY d.bucket, market
