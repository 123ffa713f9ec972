-- continuous: ops.book_1h
-- Hourly rollup of ops.book_1m (hierarchical cagg under TSL): sums of sums, never averages of averages.
SELECT
    time_bucket(INTERVAL '1 hour', bucket)                            AS bucket,
    venue,
    symbol,
    sum(updates)                                                      AS updates,
    sum(active_seconds)                                               AS active_seconds,
    sum(spread_bps_sum)                                               AS spread_bps_sum,
    min(spread_bps_min)                                               AS spread_bps_min,
    max(spread_bps_max)                                               AS spread_bps_max,
    sum(bid_qty_sum)                                                  AS bid_qty_sum,
    sum(ask_qty_sum)                                                  AS ask_qty_sum,
    sum(bid_notional_sum)                                             AS bid_notional_sum,
    sum(ask_notional_sum)                                             AS ask_notional_sum,
    sum(imbalance_sum)                                                AS imbalance_sum,
    first(mid_open, bucket)                                           AS mid_open,
    max(mid_high)                                                     AS mid_high,
    min(mid_low)                                                      AS mid_low,
    last(mid_close, bucket)                                           AS mid_close,
    last(bid_px_close, bucket)                                        AS bid_px_close,
    last(ask_px_close, bucket)                                        AS ask_px_close,
    last(bid_qty_close, bucket)                                       AS bid_qty_close,
    last(ask_qty_close, bucket)                                       AS ask_qty_close,
    min(first_ts)                                                     AS first_ts,
    max(last_ts)                                                      AS last_ts,
    max(last_recv_ts)                                                 AS last_recv_ts,
    sum(latency_ms_sum)                                               AS latency_ms_sum,
    min(latency_ms_min)                                               AS latency_ms_min,
    max(latency_ms_max)                                               AS latency_ms_max
FROM ops.book_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), venue, symbol
