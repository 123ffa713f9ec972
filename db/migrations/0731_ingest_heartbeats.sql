-- Ingest processes report their writer's backlog once a minute; the jobs service's ingest_backlog rule
-- reads it (the tower watching itself, issue 15). Pruned by the jobs service's retention job.
CREATE TABLE ops.ingest_heartbeats (
    ts             timestamptz NOT NULL DEFAULT now(),
    host           text NOT NULL,
    pid            integer NOT NULL,
    venues         text[] NOT NULL,
    queued_groups  integer NOT NULL,
    pending_rows   bigint NOT NULL,
    spill_bytes    bigint NOT NULL,
    PRIMARY KEY (host, pid, ts)
);
CREATE INDEX ingest_heartbeats_ts ON ops.ingest_heartbeats (ts DESC);
COMMENT ON TABLE ops.ingest_heartbeats IS
    'One row per ingest process and minute: its writer backlog (tower ingest/demo). Rows older than TOWER_JOBS_RUNS_KEEP are pruned.';
COMMENT ON COLUMN ops.ingest_heartbeats.ts IS 'Wall-clock time of the report (receive-side clock of the ingest host).';
COMMENT ON COLUMN ops.ingest_heartbeats.host IS 'Host name of the ingest process.';
COMMENT ON COLUMN ops.ingest_heartbeats.pid IS 'Process id of the ingest process.';
COMMENT ON COLUMN ops.ingest_heartbeats.venues IS 'Venues the process ingests.';
COMMENT ON COLUMN ops.ingest_heartbeats.queued_groups IS 'Frame groups waiting in the writer queue (count).';
COMMENT ON COLUMN ops.ingest_heartbeats.pending_rows IS 'Rows held in memory, not yet written (count).';
COMMENT ON COLUMN ops.ingest_heartbeats.spill_bytes IS 'Bytes of batches spilled to local disk because the database was slow or down; 0 = nothing spilled.';
