-- continuous: ops.trades_1h
-- Hourly rollup of ops.trades_1m.
SELECT
    time_bucket(INTERVAL '1 hour', bucket)                            AS bucket,
    venue,
    symbol,
    sum(trades)                                                       AS trades,
    sum(active_seconds)                                               AS active_seconds,
    sum(volume)                                                       AS volume,
    sum(notional)                                                     AS notional,
    sum(buy_volume)                                                   AS buy_volume,
    sum(sell_volume)                                                  AS sell_volume,
    sum(buy_notional)                                                 AS buy_notional,
    sum(sell_notional)                                                AS sell_notional,
    sum(buy_trades)                                                   AS buy_trades,
    first(open, bucket)                                               AS open,
    max(high)                                                         AS high,
    min(low)                                                          AS low,
    last(close, bucket)                                               AS close,
    min(first_ts)                                                     AS first_ts,
    max(last_ts)                                                      AS last_ts,
    max(last_recv_ts)                                                 AS last_recv_ts,
    sum(latency_ms_sum)                                               AS latency_ms_sum,
    min(latency_ms_min)                                               AS latency_ms_min,
    max(latency_ms_max)                                               AS latency_ms_max
FROM ops.trades_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), venue, symbol
