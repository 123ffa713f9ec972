-- One row per market over the selected window, weighted the way the 1-minute features are built:
-- means weighted by sample counts (never a mean of means), maxima over all minutes.
SELECT
    f.venue,
    f.symbol,
    f.asset,
    round((sum(f.spread_bps_mean * f.book_updates) / NULLIF(sum(f.book_updates), 0))::numeric, 2)::float8
                                                                               AS spread_bps_mean,
    round(max(f.spread_bps_max)::numeric, 2)::float8                          AS spread_bps_max,
    round((sum(f.depth_notional_mean * f.book_updates) / NULLIF(sum(f.book_updates), 0))::numeric, 0)::float8
                                                                               AS depth_notional_mean,
    round((sum(f.book_imbalance_mean * f.book_updates) / NULLIF(sum(f.book_updates), 0))::numeric, 3)::float8
                                                                               AS book_imbalance,
    round(((sum(f.buy_volume) - sum(f.sell_volume)) / NULLIF(sum(f.volume), 0))::numeric, 3)::float8
                                                                               AS flow_imbalance,
    round(sum(f.volume)::numeric, 4)::float8                                  AS volume,
    round(sum(f.notional)::numeric, 0)::float8                                AS notional,
    round((sum(f.notional) / NULLIF(sum(f.volume), 0))::numeric, 4)::float8   AS vwap,
    round((sum(f.latency_ms_mean * f.sample_count) / NULLIF(sum(f.sample_count), 0))::numeric, 1)::float8
                                                                               AS latency_ms_mean,
    round(max(f.latency_ms_max)::numeric, 1)::float8                          AS latency_ms_max,
    count(*)                                                                   AS minutes_with_data
FROM ops.features_1m f
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
GROUP BY f.venue, f.symbol, f.asset
ORDER BY f.asset, f.venue, f.symbol
