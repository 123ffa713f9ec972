-- What the connectors saw of their feeds: connections, gaps in the tape, and input they refused.
CREATE TABLE ops.connection_events (
    ts         timestamptz NOT NULL DEFAULT now(),
    venue      text NOT NULL,
    conn_id    text NOT NULL,          -- one id per physical connection (shard + attempt)
    event      text NOT NULL,
    url        text,
    streams    text[],
    code       integer,                -- WebSocket close code on disconnect
    reason     text,
    attempt    integer,
    delay_s    double precision,       -- backoff before the next attempt
    CONSTRAINT connection_events_event CHECK (event IN
        ('connect', 'subscribed', 'disconnect', 'reconnect_attempt', 'stale', 'rotate', 'error'))
);
SELECT create_hypertable('ops.connection_events', by_range('ts', INTERVAL '7 days'));
CREATE INDEX connection_events_venue_ts ON ops.connection_events (venue, ts DESC);

CREATE TABLE ops.feed_gaps (
    id           bigserial PRIMARY KEY,
    venue        text NOT NULL,
    symbol       text NOT NULL,
    stream       text NOT NULL,        -- e.g. aggTrade, bookTicker, trades
    detected_at  timestamptz NOT NULL DEFAULT now(),
    from_id      bigint,               -- last id seen before the gap
    to_id        bigint,               -- first id seen after the gap
    missing      bigint,               -- ids missing (to_id - from_id - 1) when ids are contiguous
    from_ts      timestamptz,
    to_ts        timestamptz,
    cause        text NOT NULL,        -- id_jump, reconnect, stale, ...
    resolved_at  timestamptz           -- set when backfilled or acknowledged
);
CREATE INDEX feed_gaps_venue_symbol ON ops.feed_gaps (venue, symbol, detected_at DESC);
CREATE INDEX feed_gaps_open ON ops.feed_gaps (venue, symbol) WHERE resolved_at IS NULL;

CREATE TABLE ops.rejected_messages (
    recv_ts  timestamptz NOT NULL,
    venue    text NOT NULL,
    stream   text,
    symbol   text,
    reason   text NOT NULL,
    raw      text NOT NULL             -- text, not jsonb: the payload may not be valid JSON
);
SELECT create_hypertable('ops.rejected_messages', by_range('recv_ts', INTERVAL '1 day'));
CREATE INDEX rejected_messages_venue_reason ON ops.rejected_messages (venue, reason, recv_ts DESC);
