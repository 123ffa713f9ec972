-- continuous: ops.depth_1m
-- Depth and slippage per minute: means (as sums + count, so rollups stay exact), minimums of each band
-- (the thinnest moment), slippage mean (over samples that could fill) and worst.
SELECT
    time_bucket(INTERVAL '1 minute', ts)            AS bucket,
    venue,
    symbol,
    count(*)                                        AS samples,
    sum(mid)                                        AS mid_sum,
    sum(bid_10bps)                                  AS bid_10bps_sum,
    sum(ask_10bps)                                  AS ask_10bps_sum,
    sum(bid_25bps)                                  AS bid_25bps_sum,
    sum(ask_25bps)                                  AS ask_25bps_sum,
    sum(bid_50bps)                                  AS bid_50bps_sum,
    sum(ask_50bps)                                  AS ask_50bps_sum,
    sum(bid_100bps)                                 AS bid_100bps_sum,
    sum(ask_100bps)                                 AS ask_100bps_sum,
    min(bid_10bps)                                  AS bid_10bps_min,
    min(ask_10bps)                                  AS ask_10bps_min,
    min(bid_25bps)                                  AS bid_25bps_min,
    min(ask_25bps)                                  AS ask_25bps_min,
    min(bid_50bps)                                  AS bid_50bps_min,
    min(ask_50bps)                                  AS ask_50bps_min,
    min(bid_100bps)                                 AS bid_100bps_min,
    min(ask_100bps)                                 AS ask_100bps_min,
    count(buy_slip_bps)                             AS buy_slip_samples,
    sum(buy_slip_bps)                               AS buy_slip_bps_sum,
    max(buy_slip_bps)                               AS buy_slip_bps_max,
    count(sell_slip_bps)                            AS sell_slip_samples,
    sum(sell_slip_bps)                              AS sell_slip_bps_sum,
    max(sell_slip_bps)                              AS sell_slip_bps_max,
    min(reach_bps)                                  AS reach_bps_min,
    max(ts)                                         AS last_ts,
    max(recv_ts)                                    AS last_recv_ts
FROM ops.raw_book_depth
GROUP BY time_bucket(INTERVAL '1 minute', ts), venue, symbol
