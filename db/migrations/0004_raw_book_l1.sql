-- Every best bid/ask update. update_id is the venue's book update id where it gives one.
CREATE TABLE ops.raw_book_l1 (
    venue      text NOT NULL,
    symbol     text NOT NULL,
    ts         timestamptz NOT NULL,
    recv_ts    timestamptz NOT NULL,
    bid_px     double precision NOT NULL,
    bid_qty    double precision NOT NULL,
    ask_px     double precision NOT NULL,
    ask_qty    double precision NOT NULL,
    update_id  bigint,
    CONSTRAINT raw_book_l1_positive CHECK (bid_px > 0 AND ask_px > 0 AND bid_qty >= 0 AND ask_qty >= 0),
    CONSTRAINT raw_book_l1_not_crossed CHECK (bid_px < ask_px)
);
SELECT create_hypertable('ops.raw_book_l1', by_range('ts', INTERVAL '1 hour'), create_default_indexes => false);
CREATE INDEX raw_book_l1_venue_symbol_ts ON ops.raw_book_l1 (venue, symbol, ts DESC);
