-- ops.depth_features_1m: order-book liquidity per minute, for dashboards and risk scoring: mean and
-- minimum notional within each band of mid (both sides together and each side), mean and worst
-- slippage of the standard order (TOWER_INGEST_SLIPPAGE_NOTIONAL) each way.
CREATE VIEW ops.depth_features_1m AS
SELECT
    d.bucket,
    d.venue,
    d.symbol,
    i.asset,
    d.samples,
    d.mid_sum / d.samples                                             AS mid_mean,
    (d.bid_10bps_sum + d.ask_10bps_sum) / d.samples                   AS depth_10bps,
    (d.bid_25bps_sum + d.ask_25bps_sum) / d.samples                   AS depth_25bps,
    (d.bid_50bps_sum + d.ask_50bps_sum) / d.samples                   AS depth_50bps,
    (d.bid_100bps_sum + d.ask_100bps_sum) / d.samples                 AS depth_100bps,
    d.bid_25bps_sum / d.samples                                       AS bid_25bps_mean,
    d.ask_25bps_sum / d.samples                                       AS ask_25bps_mean,
    least(d.bid_25bps_min, d.ask_25bps_min)                           AS side_25bps_min,
    d.buy_slip_bps_sum / NULLIF(d.buy_slip_samples, 0)                AS buy_slip_bps_mean,
    d.buy_slip_bps_max,
    d.sell_slip_bps_sum / NULLIF(d.sell_slip_samples, 0)              AS sell_slip_bps_mean,
    d.sell_slip_bps_max,
    greatest(d.buy_slip_bps_max, d.sell_slip_bps_max)                 AS slip_bps_max,
    d.samples - least(d.buy_slip_samples, d.sell_slip_samples)        AS unfillable_samples,
    d.reach_bps_min,
    d.last_ts,
    d.last_recv_ts
FROM ops.depth_1m d
LEFT JOIN ops.instruments i ON i.venue = d.venue AND i.symbol = d.symbol;

COMMENT ON VIEW ops.depth_features_1m IS
    'Order-book liquidity per minute, venue and symbol: notional within 10/25/50/100 bps of mid (mean over the '
    'minute''s samples), the thinnest side within 25 bps, and slippage of the standard market order each way';
COMMENT ON COLUMN ops.depth_features_1m.bucket IS 'minute start, venue time';
COMMENT ON COLUMN ops.depth_features_1m.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.depth_features_1m.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.depth_features_1m.asset IS 'base asset from ops.instruments; NULL if the symbol has no instruments row';
COMMENT ON COLUMN ops.depth_features_1m.samples IS 'depth samples in the minute';
COMMENT ON COLUMN ops.depth_features_1m.mid_mean IS 'mean mid over the samples, quote currency';
COMMENT ON COLUMN ops.depth_features_1m.depth_10bps IS 'mean quote-currency notional within 10 bps of mid, bid + ask';
COMMENT ON COLUMN ops.depth_features_1m.depth_25bps IS 'mean quote-currency notional within 25 bps of mid, bid + ask ("depth within +-25 bps")';
COMMENT ON COLUMN ops.depth_features_1m.depth_50bps IS 'mean quote-currency notional within 50 bps of mid, bid + ask';
COMMENT ON COLUMN ops.depth_features_1m.depth_100bps IS 'mean quote-currency notional within 100 bps of mid, bid + ask (a lower bound where reach_bps_min < 100)';
COMMENT ON COLUMN ops.depth_features_1m.bid_25bps_mean IS 'mean bid-side quote-currency notional within 25 bps of mid';
COMMENT ON COLUMN ops.depth_features_1m.ask_25bps_mean IS 'mean ask-side quote-currency notional within 25 bps of mid';
COMMENT ON COLUMN ops.depth_features_1m.side_25bps_min IS 'thinnest moment of the thinner side within 25 bps of mid, quote currency';
COMMENT ON COLUMN ops.depth_features_1m.buy_slip_bps_mean IS 'mean slippage of the standard market buy vs mid, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_features_1m.buy_slip_bps_max IS 'worst slippage of the standard market buy in the minute, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_features_1m.sell_slip_bps_mean IS 'mean slippage of the standard market sell vs mid, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_features_1m.sell_slip_bps_max IS 'worst slippage of the standard market sell in the minute, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_features_1m.slip_bps_max IS 'worse of buy_slip_bps_max and sell_slip_bps_max, bps (NULL only when neither side could be filled)';
COMMENT ON COLUMN ops.depth_features_1m.unfillable_samples IS 'samples where the held book could not fill the standard order on at least one side';
COMMENT ON COLUMN ops.depth_features_1m.reach_bps_min IS 'shortest reach of the held book in the minute, bps from mid';
COMMENT ON COLUMN ops.depth_features_1m.last_ts IS 'venue time of the minute''s last sample (depth freshness)';
COMMENT ON COLUMN ops.depth_features_1m.last_recv_ts IS 'receive time of the minute''s last sample';
