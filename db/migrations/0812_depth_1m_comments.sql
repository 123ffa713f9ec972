-- Descriptions of ops.depth_1m (db/caggs/0811 holds only its SELECT): a continuous aggregate under TSL, a
-- plain view under Apache, so the relation comment is issued by relkind as in 0721.
DO $$
DECLARE
    kind text := CASE (SELECT relkind FROM pg_class WHERE oid = 'ops.depth_1m'::regclass)
                 WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END;
BEGIN
    EXECUTE format('COMMENT ON %s ops.depth_1m IS %L', kind,
        'Order-book depth per minute, venue and symbol, from ops.raw_book_depth: sums and counts (so rollups stay '
        'exact; ops.depth_features_1m turns them into means), the minimum of each band and the worst slippage');
END $$;

COMMENT ON COLUMN ops.depth_1m.bucket IS 'minute start, venue time';
COMMENT ON COLUMN ops.depth_1m.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.depth_1m.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.depth_1m.samples IS 'depth samples in the minute (ops.raw_book_depth rows)';
COMMENT ON COLUMN ops.depth_1m.mid_sum IS 'sum of mid over the samples, quote currency (/ samples = mean mid)';
DO $$
DECLARE
    band text;
    side text;
BEGIN
    FOREACH band IN ARRAY ARRAY['10', '25', '50', '100'] LOOP
        FOREACH side IN ARRAY ARRAY['bid', 'ask'] LOOP
            EXECUTE format('COMMENT ON COLUMN ops.depth_1m.%s_%sbps_sum IS %L', side, band,
                format('sum over the samples of the %s-side quote-currency notional within %s bps of mid (/ samples = mean)', side, band));
            EXECUTE format('COMMENT ON COLUMN ops.depth_1m.%s_%sbps_min IS %L', side, band,
                format('lowest %s-side quote-currency notional within %s bps of mid in the minute', side, band));
        END LOOP;
    END LOOP;
END $$;
COMMENT ON COLUMN ops.depth_1m.buy_slip_samples IS 'samples whose book could fill the standard market buy (buy_slip_bps not NULL)';
COMMENT ON COLUMN ops.depth_1m.buy_slip_bps_sum IS 'sum of buy_slip_bps over those samples, bps (/ buy_slip_samples = mean)';
COMMENT ON COLUMN ops.depth_1m.buy_slip_bps_max IS 'worst buy slippage of the minute, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_1m.sell_slip_samples IS 'samples whose book could fill the standard market sell';
COMMENT ON COLUMN ops.depth_1m.sell_slip_bps_sum IS 'sum of sell_slip_bps over those samples, bps';
COMMENT ON COLUMN ops.depth_1m.sell_slip_bps_max IS 'worst sell slippage of the minute, bps; NULL: no sample could fill it';
COMMENT ON COLUMN ops.depth_1m.reach_bps_min IS 'shortest reach of the held book in the minute, bps from mid (bands past it are lower bounds)';
COMMENT ON COLUMN ops.depth_1m.last_ts IS 'venue time of the minute''s last sample';
COMMENT ON COLUMN ops.depth_1m.last_recv_ts IS 'receive time of the minute''s last sample';
