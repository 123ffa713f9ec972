-- continuous: ops.trades_1m
-- Trade-flow features per minute (side = aggressor). Sums and counts so rollups stay exact.
SELECT
    time_bucket(INTERVAL '1 minute', ts)                              AS bucket,
    venue,
    symbol,
    count(*)                                                          AS trades,
    count(DISTINCT time_bucket(INTERVAL '1 second', ts))              AS active_seconds,
    sum(qty)                                                          AS volume,
    sum(price * qty)                                                  AS notional,
    sum(qty) FILTER (WHERE side = 'buy')                              AS buy_volume,
    sum(qty) FILTER (WHERE side = 'sell')                             AS sell_volume,
    sum(price * qty) FILTER (WHERE side = 'buy')                      AS buy_notional,
    sum(price * qty) FILTER (WHERE side = 'sell')                     AS sell_notional,
    count(*) FILTER (WHERE side = 'buy')                              AS buy_trades,
    first(price, ts)                                                  AS open,
    max(price)                                                        AS high,
    min(price)                                                        AS low,
    last(price, ts)                                                   AS close,
    min(ts)                                                           AS first_ts,
    max(ts)                                                           AS last_ts,
    max(recv_ts)                                                      AS last_recv_ts,
    sum(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_sum,
    min(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_min,
    max(extract(epoch FROM recv_ts - ts)::float8 * 1000)                      AS latency_ms_max
FROM ops.raw_trades
GROUP BY time_bucket(INTERVAL '1 minute', ts), venue, symbol
