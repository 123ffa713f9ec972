-- Risk scores per market and minute, the events derived from them, and the alerts sent about them.
CREATE TABLE ops.risk_scores (
    bucket            timestamptz NOT NULL,      -- the minute scored (data time)
    venue             text NOT NULL,
    symbol            text NOT NULL,
    asset             text,
    score             double precision NOT NULL,  -- 0 (calm) .. 100 (act now)
    top_component     text,                       -- the component that contributed most
    components        jsonb NOT NULL DEFAULT '{}',-- {"spread": {"value": .., "score": ..}, ...}
    spread_bps        double precision,
    spread_z          double precision,           -- robust z-score vs trailing median/MAD
    depth_notional    double precision,
    depth_drop_pct    double precision,
    book_imbalance    double precision,
    flow_imbalance    double precision,
    realized_vol_bps  double precision,
    jump_bps          double precision,
    freshness_s       double precision,
    coverage          double precision,
    latency_ms        double precision,
    divergence_bps    double precision,           -- mid vs the other venues' mid for the same asset
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol, bucket),
    CONSTRAINT risk_scores_range CHECK (score >= 0 AND score <= 100)
);
SELECT create_hypertable('ops.risk_scores', by_range('bucket', INTERVAL '1 day'));
CREATE INDEX risk_scores_bucket ON ops.risk_scores (bucket DESC);

CREATE TABLE ops.risk_events (
    id                bigserial PRIMARY KEY,
    venue             text NOT NULL,
    symbol            text NOT NULL,              -- '*' for venue-wide rules (feed down)
    rule              text NOT NULL,
    severity          text NOT NULL,
    state             text NOT NULL,
    opened_at         timestamptz NOT NULL,       -- data time the condition first held
    fired_at          timestamptz,                -- data time it had held long enough to fire
    resolved_at       timestamptz,                -- data time it had stayed clear long enough
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,       -- last minute the condition held
    peak_value        double precision,
    last_value        double precision,
    threshold         double precision,
    inhibited_by      text,                       -- e.g. 'feed_down binance': why no alert was sent
    message           text,
    last_notified_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT risk_events_severity CHECK (severity IN ('info', 'warning', 'critical')),
    CONSTRAINT risk_events_state CHECK (state IN ('pending', 'firing', 'resolved', 'cancelled'))
);
-- Dedup: at most one open event per rule and market.
CREATE UNIQUE INDEX risk_events_one_open ON ops.risk_events (rule, venue, symbol)
    WHERE state IN ('pending', 'firing');
CREATE INDEX risk_events_opened ON ops.risk_events (opened_at DESC);

CREATE TABLE ops.alert_deliveries (
    id           bigserial PRIMARY KEY,
    event_id     bigint NOT NULL REFERENCES ops.risk_events (id),
    sink         text NOT NULL,                   -- webhook, slack
    kind         text NOT NULL,                   -- firing, escalated, resolved, reminder
    attempt      integer NOT NULL DEFAULT 1,
    status       text NOT NULL,                   -- sent, failed, retrying
    http_status  integer,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_deliveries_event ON ops.alert_deliveries (event_id, created_at);

-- Runs of the jobs service; the heartbeat that dashboards read under the Apache license.
CREATE TABLE ops.job_runs (
    id           bigserial PRIMARY KEY,
    job          text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    ok           boolean,
    error        text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job_started ON ops.job_runs (job, started_at DESC);
