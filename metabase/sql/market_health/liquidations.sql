-- Liquidated notional per minute by side of the forced order, summed over the selected markets:
-- 'sell' orders close longs (price falling), 'buy' orders close shorts (price rising).
-- Binance reports only the largest liquidation per symbol and second, so its figures are a lower bound.
SELECT
    f.bucket                                   AS minute,
    s.side,
    round(sum(s.notional)::numeric, 0)::float8 AS liq_notional
FROM ops.derivs_features_1m f
CROSS JOIN LATERAL (VALUES ('longs liquidated (sell)', f.liq_sell_notional),
                           ('shorts liquidated (buy)', f.liq_buy_notional)) AS s (side, notional)
WHERE f.bucket > now() - {{hours}} * INTERVAL '1 hour'
  AND f.bucket < date_trunc('minute', now())   -- complete minutes only
  AND f.liquidations > 0
[[AND f.venue = {{venue}}]]
[[AND f.symbol = {{symbol}}]]
[[AND f.asset = {{asset}}]]
GROUP BY f.bucket, s.side
HAVING sum(s.notional) > 0
ORDER BY f.bucket, s.side
