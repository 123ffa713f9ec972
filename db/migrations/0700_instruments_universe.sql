-- The instrument universe: an instrument becomes active when its first market data is committed (or a
-- user activates it), never by seeding. Seeded instruments that never delivered a trade or a book update
-- are deactivated here, so a desk that ingests only BTCUSDT is not paged about ETHUSDT and SOLUSDT.
ALTER TABLE ops.instruments
    ALTER COLUMN active SET DEFAULT false,
    ADD COLUMN tick_size      double precision,
    ADD COLUMN status         text,
    ADD COLUMN synced_at      timestamptz,
    ADD COLUMN first_data_at  timestamptz,
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN deactivated_by text,
    ADD CONSTRAINT instruments_tick_size CHECK (tick_size > 0);

COMMENT ON COLUMN ops.instruments.active IS
    'scored and alerted on by tower jobs; set when ingest commits the first trade or book row of the instrument, '
    'or by `tower instruments activate`; false for seeded, synced-only, delisted and user-deactivated instruments';
COMMENT ON COLUMN ops.instruments.tick_size IS
    'price increment in quote currency from the venue''s instrument list (Hyperliquid: the finest step its '
    'decimals rule allows); NULL: never synced';
COMMENT ON COLUMN ops.instruments.status IS
    'the venue''s own listing status at the last sync or ingest start (TRADING, Trading, live, listed, delisted), '
    'or ''not listed'' when the venue''s list no longer has it; NULL: never checked';
COMMENT ON COLUMN ops.instruments.synced_at IS
    'when the venue''s instrument list last confirmed this row (`tower instruments sync`, `tower ingest` start); '
    'NULL: never';
COMMENT ON COLUMN ops.instruments.first_data_at IS
    'when an ingest process first committed a trade or book row for it and activated it (our clock); '
    'NULL: none since migration 0700';
COMMENT ON COLUMN ops.instruments.deactivated_at IS 'when it was last deactivated; NULL: never or since reactivated';
COMMENT ON COLUMN ops.instruments.deactivated_by IS
    'why it is inactive: user (`tower instruments deactivate`: arriving data does not reactivate it), '
    'sync (delisted or not listed), migration 0700 (seeded, never delivered data); NULL: active or never activated';

UPDATE ops.instruments i
SET active = false, deactivated_at = now(), deactivated_by = 'migration 0700'
WHERE i.active
  AND NOT EXISTS (SELECT 1 FROM ops.raw_trades t WHERE t.venue = i.venue AND t.symbol = i.symbol)
  AND NOT EXISTS (SELECT 1 FROM ops.raw_book_l1 b WHERE b.venue = i.venue AND b.symbol = i.symbol);
