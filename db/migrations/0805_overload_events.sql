-- The writer's overload policy (issue 13) is recorded as data beside the connection events, so a minute's
-- coverage can be trusted: 'conflating' rows say which L1 book updates were not stored (only the latest per
-- symbol and short window was), 'paused' rows say when a connection's reader stopped reading the socket.
ALTER TABLE ops.connection_events DROP CONSTRAINT connection_events_event;
ALTER TABLE ops.connection_events ADD CONSTRAINT connection_events_event CHECK (event IN
    ('connect', 'subscribed', 'disconnect', 'reconnect_attempt', 'stale', 'rotate', 'error', 'conflating', 'paused'));
ALTER TABLE ops.connection_events ADD COLUMN symbol text;
ALTER TABLE ops.connection_events ADD COLUMN since timestamptz;
ALTER TABLE ops.connection_events ADD COLUMN conflated bigint;

COMMENT ON COLUMN ops.connection_events.event IS
    'connect, subscribed, disconnect, reconnect_attempt, stale (no market data for 30 s), rotate (planned '
    'replacement), error, conflating (the writer was overloaded: L1 book updates of one symbol were conflated '
    'during [since, ts]), paused (the reader stopped reading the socket during [since, ts]: writer memory full '
    'and no spill allowed, i.e. TCP backpressure on the venue)';
COMMENT ON COLUMN ops.connection_events.symbol IS
    'instrument a conflating row is about (venue symbol); NULL for connection-level events';
COMMENT ON COLUMN ops.connection_events.since IS
    'local time the interval of a conflating or paused row began (ts is its end); NULL for other events';
COMMENT ON COLUMN ops.connection_events.conflated IS
    'conflating rows: L1 book updates (ops.raw_book_l1 rows) of this symbol received during [since, ts] and '
    'not stored because a newer one of the same short window replaced them (count); NULL for other events';
COMMENT ON COLUMN ops.connection_events.conn_id IS
    'one id per physical connection (shard + attempt); writer:<name> for conflating rows, which the writer of an '
    'ingest process records';
