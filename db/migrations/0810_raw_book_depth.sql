-- Order-book depth samples: how much quote-currency notional rests within 10/25/50/100 bps of mid on
-- each side, and what a standard market order would cost, from a full book the connector keeps in
-- sync (snapshot + diffs, sequence and checksum checks). One row per venue/symbol per sample: at most
-- every TOWER_INGEST_DEPTH_SAMPLE_MS, never more often than the book changes.
CREATE TABLE ops.raw_book_depth (
    venue          text NOT NULL,
    symbol         text NOT NULL,
    ts             timestamptz NOT NULL,
    recv_ts        timestamptz NOT NULL,
    mid            double precision NOT NULL,
    bid_10bps      double precision NOT NULL,
    ask_10bps      double precision NOT NULL,
    bid_25bps      double precision NOT NULL,
    ask_25bps      double precision NOT NULL,
    bid_50bps      double precision NOT NULL,
    ask_50bps      double precision NOT NULL,
    bid_100bps     double precision NOT NULL,
    ask_100bps     double precision NOT NULL,
    buy_slip_bps   double precision,
    sell_slip_bps  double precision,
    reach_bps      double precision NOT NULL,
    bid_levels     integer NOT NULL,
    ask_levels     integer NOT NULL,
    CONSTRAINT raw_book_depth_positive CHECK (
        mid > 0 AND bid_10bps >= 0 AND ask_10bps >= 0 AND bid_25bps >= bid_10bps AND ask_25bps >= ask_10bps
        AND bid_50bps >= bid_25bps AND ask_50bps >= ask_25bps AND bid_100bps >= bid_50bps
        AND ask_100bps >= ask_50bps AND reach_bps >= 0 AND bid_levels > 0 AND ask_levels > 0
        AND (buy_slip_bps IS NULL OR buy_slip_bps >= 0) AND (sell_slip_bps IS NULL OR sell_slip_bps >= 0))
);
SELECT create_hypertable('ops.raw_book_depth', by_range('ts', INTERVAL '6 hours'), create_default_indexes => false);
CREATE INDEX raw_book_depth_venue_symbol_ts ON ops.raw_book_depth (venue, symbol, ts DESC);
-- Exactly once, as for the other raw tables (0300): a sample is the book after its last applied update,
-- so one venue/symbol/venue-time is one sample.
CREATE UNIQUE INDEX raw_book_depth_dedup ON ops.raw_book_depth (venue, symbol, ts);

COMMENT ON TABLE ops.raw_book_depth IS
    'Order-book depth samples per venue and symbol from a full book kept in sync by the connector (snapshot + '
    'diffs, sequence/checksum checks); at most one per TOWER_INGEST_DEPTH_SAMPLE_MS and only after the book changed; '
    'never sampled while out of sync (see ops.feed_gaps stream ''depth'')';
COMMENT ON COLUMN ops.raw_book_depth.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.raw_book_depth.symbol IS 'venue symbol (see ops.instruments)';
COMMENT ON COLUMN ops.raw_book_depth.ts IS 'venue time of the last update applied to the book before this sample';
COMMENT ON COLUMN ops.raw_book_depth.recv_ts IS 'receive time (local clock) of that update; recv_ts - ts = latency';
COMMENT ON COLUMN ops.raw_book_depth.mid IS '(best bid + best ask) / 2, quote currency';
COMMENT ON COLUMN ops.raw_book_depth.bid_10bps IS 'quote-currency notional (price x base size) resting on the bid side at prices >= mid x (1 - 10 bps)';
COMMENT ON COLUMN ops.raw_book_depth.ask_10bps IS 'quote-currency notional resting on the ask side at prices <= mid x (1 + 10 bps)';
COMMENT ON COLUMN ops.raw_book_depth.bid_25bps IS 'quote-currency notional on the bid side within 25 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.ask_25bps IS 'quote-currency notional on the ask side within 25 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.bid_50bps IS 'quote-currency notional on the bid side within 50 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.ask_50bps IS 'quote-currency notional on the ask side within 50 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.bid_100bps IS 'quote-currency notional on the bid side within 100 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.ask_100bps IS 'quote-currency notional on the ask side within 100 bps of mid';
COMMENT ON COLUMN ops.raw_book_depth.buy_slip_bps IS
    'average fill price of a market buy of TOWER_INGEST_SLIPPAGE_NOTIONAL (quote currency, default 100000) walking the '
    'asks, vs mid, in bps (>= 0); NULL: the held book cannot fill it';
COMMENT ON COLUMN ops.raw_book_depth.sell_slip_bps IS
    'mid vs the average fill price of a market sell of TOWER_INGEST_SLIPPAGE_NOTIONAL walking the bids, in bps (>= 0); '
    'NULL: the held book cannot fill it';
COMMENT ON COLUMN ops.raw_book_depth.reach_bps IS
    'how far from mid the held book extends on its shorter side, bps: bands wider than this are lower bounds '
    '(venues send a capped number of levels)';
COMMENT ON COLUMN ops.raw_book_depth.bid_levels IS 'price levels held on the bid side';
COMMENT ON COLUMN ops.raw_book_depth.ask_levels IS 'price levels held on the ask side';

-- Retention and compression like the other raw tables; the minute aggregate keeps the history.
INSERT INTO ops.policy_settings
    (relation, kind, source, bucket_width, segment_by, order_by,
     retention, compress_after, refresh_every, refresh_start_offset, refresh_end_offset)
VALUES
    ('ops.raw_book_depth', 'hypertable', NULL, NULL, 'venue, symbol', 'ts DESC',
     INTERVAL '14 days', INTERVAL '6 hours', NULL, NULL, NULL),
    ('ops.depth_1m', 'cagg', 'ops.raw_book_depth', INTERVAL '1 minute', NULL, NULL,
     INTERVAL '180 days', INTERVAL '7 days', INTERVAL '1 minute', INTERVAL '2 hours', INTERVAL '1 minute')
ON CONFLICT (relation) DO NOTHING;
