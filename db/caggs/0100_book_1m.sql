-- continuous: ops.book_1m
-- L1 book features per minute. Sums and counts (not averages) so the 1-hour rollup is exact.
-- Under TSL this SELECT becomes a real-time continuous aggregate; under Apache a plain view.
SELECT
    time_bucket(INTERVAL '1 minute', ts)                              AS bucket,
    venue,
    symbol,
    count(*)                                                          AS updates,
    count(DISTINCT time_bucket(INTERVAL '1 second', ts))              AS active_seconds,
    sum((ask_px - bid_px) / ((ask_px + bid_px) / 2) * 1e4)            AS spread_bps_sum,
    min((ask_px - bid_px) / ((ask_px + bid_px) / 2) * 1e4)            AS spread_bps_min,
    max((ask_px - bid_px) / ((ask_px + bid_px) / 2) * 1e4)            AS spread_bps_max,
    sum(bid_qty)                                                      AS bid_qty_sum,
    sum(ask_qty)                                                      AS ask_qty_sum,
    sum(bid_px * bid_qty)                                             AS bid_notional_sum,
    sum(ask_px * ask_qty)                                             AS ask_notional_sum,
    sum((bid_qty - ask_qty) / NULLIF(bid_qty + ask_qty, 0))           AS imbalance_sum,
    first((bid_px + ask_px) / 2, ts)                                  AS mid_open,
    max((bid_px + ask_px) / 2)                                        AS mid_high,
    min((bid_px + ask_px) / 2)                                        AS mid_low,
    last((bid_px + ask_px) / 2, ts)                                   AS mid_close,
    last(bid_px, ts)                                                  AS bid_px_close,
    last(ask_px, ts)                                                  AS ask_px_close,
    last(bid_qty, ts)                                                 AS bid_qty_close,
    last(ask_qty, ts)                                                 AS ask_qty_close,
    min(ts)                                                           AS first_ts,
    max(ts)                                                           AS last_ts,
    max(recv_ts)                                                      AS last_recv_ts,
    sum(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_sum,
    min(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_min,
    max(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_max
FROM ops.raw_book_l1
GROUP BY time_bucket(INTERVAL '1 minute', ts), venue, symbol
