-- State of the jobs service (issue 4): how far risk evaluation has got, and the alert outbox.

-- One row per cursor, e.g. 'risk' = the last data minute scored and evaluated. Evaluation only ever
-- moves forward from here, which is what makes a repeated or overlapping pass a no-op.
CREATE TABLE ops.job_cursors (
    name        text PRIMARY KEY,
    position    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Notifications decided by evaluation, one row per (event, kind, sink). Written in the same
-- transaction as the event change, sent afterwards: a slow or dead sink never holds up scoring,
-- and a crash between the two loses nothing (queued rows are sent by the next pass).
CREATE TABLE ops.alert_outbox (
    id          bigserial PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES ops.risk_events (id),
    sink        text NOT NULL,                    -- webhook, slack
    kind        text NOT NULL,                    -- firing, escalated, resolved, reminder
    data_time   timestamptz NOT NULL,             -- the data minute that caused it
    payload     jsonb NOT NULL,                   -- the event as it was at that minute
    status      text NOT NULL DEFAULT 'queued',
    attempts    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    CONSTRAINT alert_outbox_kind CHECK (kind IN ('firing', 'escalated', 'resolved', 'reminder')),
    CONSTRAINT alert_outbox_status CHECK (status IN ('queued', 'sent', 'failed'))
);
CREATE INDEX alert_outbox_queued ON ops.alert_outbox (id) WHERE status = 'queued';

-- Each delivery attempt points at the notification it tried to send.
ALTER TABLE ops.alert_deliveries ADD COLUMN outbox_id bigint REFERENCES ops.alert_outbox (id);
ALTER TABLE ops.alert_deliveries ADD COLUMN duration_ms double precision;

CREATE INDEX risk_events_state ON ops.risk_events (state, opened_at DESC);

-- Robust statistics over a window's values (array_agg(x) OVER w): NULLs are ignored.
CREATE OR REPLACE FUNCTION ops.median(vals double precision[])
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(vals) AS v
$$;

-- Median absolute deviation from the median (unscaled; x1.4826 estimates a normal sigma).
CREATE OR REPLACE FUNCTION ops.mad(vals double precision[])
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v - m.med))
    FROM unnest(vals) AS v, (SELECT ops.median(vals) AS med) AS m
$$;
