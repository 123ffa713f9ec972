-- continuous: ops.liquidations_1m
-- Liquidations per minute by side of the forced order ('sell' = longs liquidated).
SELECT
    time_bucket(INTERVAL '1 minute', ts)                                            AS bucket,
    venue,
    symbol,
    count(*)                                                                        AS liquidations,
    coalesce(sum(qty) FILTER (WHERE side = 'sell'), 0)                              AS sell_qty,
    coalesce(sum(qty) FILTER (WHERE side = 'buy'), 0)                               AS buy_qty,
    coalesce(sum(price * qty) FILTER (WHERE side = 'sell'), 0)                      AS sell_notional,
    coalesce(sum(price * qty) FILTER (WHERE side = 'buy'), 0)                       AS buy_notional,
    max(price * qty)                                                                AS largest_notional
FROM ops.raw_liquidations
GROUP BY time_bucket(INTERVAL '1 minute', ts), venue, symbol
