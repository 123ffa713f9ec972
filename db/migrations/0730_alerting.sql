-- Alerting a desk can live with (issue 15): event history, silences, acknowledgements, grouped
-- notifications, PagerDuty acknowledgements and the ingest heartbeat the tower watches itself with.

-- Every change of an event's state (and each escalation, acknowledgement), written in the same
-- transaction as the change itself.
CREATE TABLE ops.risk_event_transitions (
    id          bigserial PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES ops.risk_events (id),
    from_state  text,
    to_state    text NOT NULL,
    severity    text NOT NULL,
    data_time   timestamptz,
    wall_time   timestamptz NOT NULL DEFAULT now(),
    why         text NOT NULL
);
CREATE INDEX risk_event_transitions_event ON ops.risk_event_transitions (event_id, id);
COMMENT ON TABLE ops.risk_event_transitions IS
    'History of ops.risk_events: one row per state change, escalation or acknowledgement, written in the same transaction as the change.';
COMMENT ON COLUMN ops.risk_event_transitions.id IS 'Row id, increasing in the order the changes were written.';
COMMENT ON COLUMN ops.risk_event_transitions.event_id IS 'The event (ops.risk_events.id).';
COMMENT ON COLUMN ops.risk_event_transitions.from_state IS 'State before the change; NULL when the event was opened.';
COMMENT ON COLUMN ops.risk_event_transitions.to_state IS 'State after the change: pending, firing, resolved or cancelled.';
COMMENT ON COLUMN ops.risk_event_transitions.severity IS 'Severity of the event after the change (info, warning, critical).';
COMMENT ON COLUMN ops.risk_event_transitions.data_time IS 'Data minute (bucket start) whose evaluation made the change; NULL for an acknowledgement (a person, not data).';
COMMENT ON COLUMN ops.risk_event_transitions.wall_time IS 'Wall-clock time the change was committed.';
COMMENT ON COLUMN ops.risk_event_transitions.why IS 'What made the change, e.g. "held for 2 min", "clear for 3 min", "escalated warning -> critical", "acknowledged by ana".';

-- Silences: events matching every given matcher send nothing while the silence lasts.
CREATE TABLE ops.silences (
    id          bigserial PRIMARY KEY,
    rule        text,
    venue       text,
    symbol      text,
    asset       text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    comment     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT silences_order CHECK (ends_at > starts_at)
);
CREATE INDEX silences_ends ON ops.silences (ends_at DESC);
COMMENT ON TABLE ops.silences IS
    'Silences (tower silence add/list/expire): an event matching every non-NULL matcher keeps its lifecycle but sends nothing while starts_at <= data minute < ends_at.';
COMMENT ON COLUMN ops.silences.id IS 'Silence id, as printed by tower silence add.';
COMMENT ON COLUMN ops.silences.rule IS 'Rule name to match; NULL = any rule.';
COMMENT ON COLUMN ops.silences.venue IS 'Venue to match; NULL = any venue.';
COMMENT ON COLUMN ops.silences.symbol IS 'Venue symbol to match (venue-wide events have symbol *); NULL = any symbol.';
COMMENT ON COLUMN ops.silences.asset IS 'Asset to match (ops.instruments.asset); NULL = any asset. Venue-wide events have no asset.';
COMMENT ON COLUMN ops.silences.starts_at IS 'Start, compared with the data minute evaluated (UTC).';
COMMENT ON COLUMN ops.silences.ends_at IS 'End (exclusive), compared with the data minute evaluated; tower silence expire sets it to now.';
COMMENT ON COLUMN ops.silences.created_by IS 'Who created it (--by, default the OS user).';
COMMENT ON COLUMN ops.silences.comment IS 'Why (required).';
COMMENT ON COLUMN ops.silences.created_at IS 'Wall-clock time of creation.';

ALTER TABLE ops.risk_events ADD COLUMN silenced_by bigint REFERENCES ops.silences (id);
ALTER TABLE ops.risk_events ADD COLUMN acked_at timestamptz;
ALTER TABLE ops.risk_events ADD COLUMN acked_by text;
ALTER TABLE ops.risk_events ADD COLUMN ack_comment text;
COMMENT ON COLUMN ops.risk_events.silenced_by IS 'The silence (ops.silences.id) muting this event at its last evaluated minute; NULL = not silenced.';
COMMENT ON COLUMN ops.risk_events.acked_at IS 'Wall-clock time someone acknowledged the event (tower events ack); NULL = not acknowledged. No reminders once set.';
COMMENT ON COLUMN ops.risk_events.acked_by IS 'Who acknowledged it (--by, default the OS user).';
COMMENT ON COLUMN ops.risk_events.ack_comment IS 'Comment given with the acknowledgement; NULL = none.';

-- An acknowledgement is sent too (PagerDuty: action acknowledge).
ALTER TABLE ops.alert_outbox DROP CONSTRAINT alert_outbox_kind;
ALTER TABLE ops.alert_outbox ADD CONSTRAINT alert_outbox_kind
    CHECK (kind IN ('firing', 'escalated', 'resolved', 'reminder', 'acknowledged'));
ALTER TABLE ops.alert_outbox ADD COLUMN group_key text;
COMMENT ON COLUMN ops.alert_outbox.group_key IS
    'Notification group ([notify] group_by values joined, e.g. "binance spread_blowout"): queued rows of one sink, kind and group within group_interval of data time go out as one notification. NULL = sent alone.';
