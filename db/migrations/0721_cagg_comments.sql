-- Descriptions of the continuous aggregates (db/caggs holds only their SELECTs). Under TSL they are
-- continuous aggregates, under Apache plain views; COMMENT ON must name the relation's kind, so the
-- relation comments are issued by relkind ('m' materialized view, 'v' view: TimescaleDB presents a
-- continuous aggregate as a view). COMMENT ON COLUMN works on either.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT rel::regclass AS rel, text, (SELECT relkind FROM pg_class WHERE oid = rel::regclass) AS relkind
        FROM (VALUES
            ('ops.book_1m', 'L1 book per minute, venue and symbol, from ops.raw_book_l1: sums, counts, min/max, first/last (sums so rollups stay exact; ops.features_1m turns them into means)'),
            ('ops.trades_1m', 'Trade flow per minute, venue and symbol, from ops.raw_trades: counts, volumes, notionals by aggressor side, OHLC'),
            ('ops.book_1h', 'Hourly rollup of ops.book_1m: sums of sums, never averages of averages'),
            ('ops.trades_1h', 'Hourly rollup of ops.trades_1m'),
            ('ops.derivs_1m', 'Mark, index, funding and open interest per minute, venue and symbol, from ops.raw_derivs; each last/first value ignores messages that did not carry that field'),
            ('ops.liquidations_1m', 'Liquidations per minute, venue and symbol, from ops.raw_liquidations, by side of the forced order (sell = longs liquidated); no row = no liquidation')
        ) AS t(rel, text)
    LOOP
        EXECUTE format('COMMENT ON %s %s IS %L',
                       CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, c.rel, c.text);
    END LOOP;
END $$;

-- The 1-minute and 1-hour book and trade aggregates share these columns; the hourly ones cover the
-- hour's minutes.
DO $$
DECLARE
    rel text;
    c record;
BEGIN
    FOREACH rel IN ARRAY ARRAY['ops.book_1m', 'ops.book_1h', 'ops.trades_1m', 'ops.trades_1h'] LOOP
        FOR c IN SELECT * FROM (VALUES
            ('bucket', 'bucket start, venue time (time_bucket of ts)'),
            ('venue', 'binance, hyperliquid, bybit, okx'),
            ('symbol', 'venue symbol'),
            ('latency_ms_min', 'lowest latency recv_ts - ts, ms (negative: venue clock ahead of ours)'),
            ('latency_ms_max', 'highest latency recv_ts - ts, ms')
        ) AS t(col, text) LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', rel, c.col, c.text);
        END LOOP;
    END LOOP;

    FOREACH rel IN ARRAY ARRAY['ops.book_1m', 'ops.book_1h'] LOOP
        FOR c IN SELECT * FROM (VALUES
            ('updates', 'L1 updates in the bucket'),
            ('active_seconds', 'seconds of the bucket with at least one update (book coverage = active_seconds / bucket seconds)'),
            ('spread_bps_sum', 'sum over updates of (ask - bid) / mid x 1e4, bps; divide by updates for the mean'),
            ('spread_bps_min', 'narrowest spread of the bucket, bps'),
            ('spread_bps_max', 'widest spread of the bucket, bps'),
            ('bid_qty_sum', 'sum over updates of the best bid size, base units; divide by updates for the mean'),
            ('ask_qty_sum', 'sum over updates of the best ask size, base units'),
            ('bid_notional_sum', 'sum over updates of bid_px x bid_qty, quote currency'),
            ('ask_notional_sum', 'sum over updates of ask_px x ask_qty, quote currency'),
            ('imbalance_sum', 'sum over updates of (bid_qty - ask_qty) / (bid_qty + ask_qty); divide by updates for the mean (-1 .. 1)'),
            ('mid_open', 'first mid (bid + ask) / 2 of the bucket, quote currency'),
            ('mid_high', 'highest mid of the bucket'),
            ('mid_low', 'lowest mid of the bucket'),
            ('mid_close', 'last mid of the bucket'),
            ('bid_px_close', 'last best bid of the bucket'),
            ('ask_px_close', 'last best ask of the bucket'),
            ('bid_qty_close', 'last best bid size of the bucket, base units'),
            ('ask_qty_close', 'last best ask size of the bucket, base units'),
            ('first_ts', 'venue time of the first update in the bucket'),
            ('last_ts', 'venue time of the last update in the bucket'),
            ('last_recv_ts', 'latest receive time (local clock) in the bucket'),
            ('latency_ms_sum', 'sum over updates of recv_ts - ts, ms; divide by updates for the mean')
        ) AS t(col, text) LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', rel, c.col, c.text);
        END LOOP;
    END LOOP;

    FOREACH rel IN ARRAY ARRAY['ops.trades_1m', 'ops.trades_1h'] LOOP
        FOR c IN SELECT * FROM (VALUES
            ('trades', 'trade prints in the bucket'),
            ('active_seconds', 'seconds of the bucket with at least one trade'),
            ('volume', 'traded size, base units'),
            ('notional', 'traded notional, sum of price x qty, quote currency'),
            ('buy_volume', 'size of buyer-initiated trades (aggressor buy), base units; NULL with no such trade'),
            ('sell_volume', 'size of seller-initiated trades, base units; NULL with no such trade'),
            ('buy_notional', 'notional of buyer-initiated trades, quote currency; NULL with no such trade'),
            ('sell_notional', 'notional of seller-initiated trades, quote currency; NULL with no such trade'),
            ('buy_trades', 'number of buyer-initiated trades'),
            ('open', 'first trade price of the bucket, quote currency'),
            ('high', 'highest trade price'),
            ('low', 'lowest trade price'),
            ('close', 'last trade price'),
            ('first_ts', 'venue time of the first trade'),
            ('last_ts', 'venue time of the last trade'),
            ('last_recv_ts', 'latest receive time (local clock)'),
            ('latency_ms_sum', 'sum over trades of recv_ts - ts, ms; divide by trades for the mean')
        ) AS t(col, text) LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', rel, c.col, c.text);
        END LOOP;
    END LOOP;
END $$;

COMMENT ON COLUMN ops.derivs_1m.bucket IS 'minute start, venue time';
COMMENT ON COLUMN ops.derivs_1m.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.derivs_1m.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.derivs_1m.updates IS 'ops.raw_derivs messages in the minute';
COMMENT ON COLUMN ops.derivs_1m.basis_samples IS 'messages carrying both mark and index (the ones basis_bps_* are computed from)';
COMMENT ON COLUMN ops.derivs_1m.basis_bps_sum IS 'sum of (mark - index) / index x 1e4 over basis_samples, bps (signed); NULL when basis_samples = 0';
COMMENT ON COLUMN ops.derivs_1m.basis_bps_min IS 'lowest basis of the minute, bps; NULL when basis_samples = 0';
COMMENT ON COLUMN ops.derivs_1m.basis_bps_max IS 'highest basis of the minute, bps; NULL when basis_samples = 0';
COMMENT ON COLUMN ops.derivs_1m.mark_close IS 'last mark price of the minute, quote currency; NULL if no message carried one';
COMMENT ON COLUMN ops.derivs_1m.index_close IS 'last index price of the minute, quote currency; NULL if none';
COMMENT ON COLUMN ops.derivs_1m.funding_rate IS 'last funding rate of the minute, per funding_interval, fraction (0.0001 = 1 bp); NULL if none';
COMMENT ON COLUMN ops.derivs_1m.funding_interval IS 'last funding interval of the minute (8 h Binance, 1 h Hyperliquid); NULL if none';
COMMENT ON COLUMN ops.derivs_1m.next_funding_ts IS 'last announced next funding time, venue time; NULL if none';
COMMENT ON COLUMN ops.derivs_1m.oi_open IS 'first open interest of the minute, base units; NULL if none';
COMMENT ON COLUMN ops.derivs_1m.oi_close IS 'last open interest of the minute, base units; NULL if none';
COMMENT ON COLUMN ops.derivs_1m.last_ts IS 'venue time of the last message in the minute';

COMMENT ON COLUMN ops.liquidations_1m.bucket IS 'minute start, venue time';
COMMENT ON COLUMN ops.liquidations_1m.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.liquidations_1m.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.liquidations_1m.liquidations IS 'forced orders in the minute (both sides)';
COMMENT ON COLUMN ops.liquidations_1m.sell_qty IS 'size of sell forced orders (longs liquidated), base units; 0 if none';
COMMENT ON COLUMN ops.liquidations_1m.buy_qty IS 'size of buy forced orders (shorts liquidated), base units; 0 if none';
COMMENT ON COLUMN ops.liquidations_1m.sell_notional IS 'price x qty of sell forced orders (longs liquidated), quote currency; 0 if none';
COMMENT ON COLUMN ops.liquidations_1m.buy_notional IS 'price x qty of buy forced orders (shorts liquidated), quote currency; 0 if none';
COMMENT ON COLUMN ops.liquidations_1m.largest_notional IS 'largest single forced order of the minute, quote currency';
