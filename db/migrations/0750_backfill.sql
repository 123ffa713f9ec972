-- Gap backfill: trades recovered from a venue's REST history are stored beside the streamed ones, and
-- every gap says how it ended.
ALTER TABLE ops.raw_trades ADD COLUMN source text NOT NULL DEFAULT 'ws';
COMMENT ON COLUMN ops.raw_trades.source IS
    'how the trade arrived: ''ws'' streamed live, ''rest'' backfilled from the venue''s REST history after a gap';

ALTER TABLE ops.feed_gaps ADD COLUMN resolution text;
ALTER TABLE ops.feed_gaps ADD COLUMN backfilled bigint;
ALTER TABLE ops.feed_gaps ADD CONSTRAINT feed_gaps_resolution
    CHECK (resolution IN ('backfilled', 'partial', 'unavailable'));
COMMENT ON COLUMN ops.feed_gaps.resolution IS
    'how the backfill ended: backfilled (every missing trade recovered), partial (some: the venue''s REST keeps '
    'too little history, or it failed midway), unavailable (the venue has no history to ask: the gap stays open); '
    'NULL: not tried yet';
COMMENT ON COLUMN ops.feed_gaps.backfilled IS
    'trades recovered from REST and stored for this gap (rows new to ops.raw_trades); NULL: not tried yet';
COMMENT ON COLUMN ops.feed_gaps.resolved_at IS
    'when the gap was closed (backfilled or partial: as much as the venue keeps was recovered); NULL: still open';
