-- Exactly-once storage for the connectors: a replayed or overlapping batch must not add rows twice.
-- The writer COPYs straight into the table; only a batch that hits one of these keys (a replay, a
-- rotation overlap across a restart) takes the slower staging-table + ON CONFLICT DO NOTHING path.
-- Unique indexes on a hypertable must contain the partitioning column ts.
CREATE UNIQUE INDEX raw_trades_dedup ON ops.raw_trades (venue, symbol, trade_id, ts);

-- Binance bookTicker has an update id; Hyperliquid bbo has none, and its time is the block time,
-- so one (venue, symbol, ts) with no update id is one book state: NULLS NOT DISTINCT makes it a key.
CREATE UNIQUE INDEX raw_book_l1_dedup ON ops.raw_book_l1 (venue, symbol, ts, update_id) NULLS NOT DISTINCT;
