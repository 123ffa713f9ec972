-- Quality per minute (ops.features_1m gaps / rejected / backfilled_trades / complete) counts these per
-- market and bucket: indexes that make those counts index lookups, not scans.
-- Backfilled trades are few: a partial index holds only them.
CREATE INDEX raw_trades_rest ON ops.raw_trades (venue, symbol, ts) WHERE source = 'rest';
CREATE INDEX rejected_messages_venue_symbol ON ops.rejected_messages (venue, symbol, recv_ts DESC);

-- Rules that fire on incomplete minutes (fire_on_incomplete) say so on their event.
ALTER TABLE ops.risk_events ADD COLUMN incomplete_at timestamptz;
COMMENT ON COLUMN ops.risk_events.incomplete_at IS
    'data time of the last minute the condition held while that minute was incomplete (ops.features_1m.complete '
    'false: an open gap or low coverage); NULL: every minute it held on was complete';
