-- check_policy_settings(): refuse settings that would silently lose data or cannot run.
CREATE OR REPLACE FUNCTION ops.check_policy_settings()
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT a.relation, a.refresh_start_offset, a.refresh_end_offset, a.bucket_width,
               a.compress_after, s.relation AS src, s.retention AS src_retention
        FROM ops.policy_settings a
        LEFT JOIN ops.policy_settings s ON s.relation = a.source
        WHERE a.kind = 'cagg'
    LOOP
        IF c.refresh_start_offset IS NULL OR c.refresh_end_offset IS NULL OR c.refresh_start_offset - c.refresh_end_offset < 2 * c.bucket_width THEN
            RAISE EXCEPTION 'refresh window of % (start_offset %, end_offset %) must cover at least two % buckets',
                c.relation, c.refresh_start_offset, c.refresh_end_offset, c.bucket_width;
        END IF;
        -- Raw data dropped before the cagg refreshed it would leave holes the policy never fills.
        IF c.src_retention IS NOT NULL AND c.src_retention <= c.refresh_start_offset THEN
            RAISE EXCEPTION 'retention of % (%) must be longer than the refresh start_offset of % (%)',
                c.src, c.src_retention, c.relation, c.refresh_start_offset;
        END IF;
        -- Refreshing into compressed cagg chunks is slow (and refused by older TimescaleDB).
        IF c.compress_after IS NOT NULL AND c.compress_after <= c.refresh_start_offset THEN
            RAISE EXCEPTION 'compress_after of % (%) must be longer than its refresh start_offset (%)',
                c.relation, c.compress_after, c.refresh_start_offset;
        END IF;
    END LOOP;
END $$;

-- Every policy job under the name users know: a cagg's jobs run on its materialization
-- hypertable, so map that back to the view. Dashboards read job health from here under TSL.
CREATE VIEW ops.policy_jobs AS
SELECT
    CASE WHEN ca.view_name IS NOT NULL THEN format('%I.%I', ca.view_schema, ca.view_name)
         ELSE format('%I.%I', j.hypertable_schema, j.hypertable_name) END AS relation,
    j.job_id,
    replace(j.proc_name, 'policy_', '') AS policy,
    j.proc_name,
    j.schedule_interval,
    j.config,
    s.last_run_status,
    s.last_run_started_at,
    s.last_run_duration,
    s.next_start,
    s.total_runs,
    s.total_failures
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.hypertable_name IS NOT NULL;

-- The TimescaleDB job of a kind for a relation (hypertable or cagg), if any.
CREATE OR REPLACE FUNCTION ops.policy_job(rel text, proc text)
RETURNS TABLE (job_id integer, schedule_interval interval, config jsonb)
LANGUAGE sql STABLE AS $$
    SELECT pj.job_id, pj.schedule_interval, pj.config
    FROM ops.policy_jobs pj
    WHERE pj.proc_name = proc AND pj.relation = rel
$$;

-- apply_policies(): make the TimescaleDB jobs match ops.policy_settings (TSL), or report what the
-- Apache mode does instead. Idempotent: unchanged settings leave jobs (and their ids) alone.
CREATE OR REPLACE FUNCTION ops.apply_policies(only_relation text DEFAULT NULL)
RETURNS TABLE (relation text, policy text, action text, detail text)
LANGUAGE plpgsql AS $$
DECLARE
    p ops.policy_settings;
    tsl boolean := current_setting('timescaledb.license', true) = 'timescale';
    j record;
    enabled boolean;
BEGIN
    PERFORM ops.check_policy_settings();
    FOR p IN SELECT * FROM ops.policy_settings s
             WHERE only_relation IS NULL OR s.relation = only_relation ORDER BY s.relation LOOP
        relation := p.relation;

        IF NOT tsl THEN
            IF p.kind = 'cagg' THEN
                policy := 'all'; action := 'n/a';
                detail := 'apache license: plain view computed live from its source; nothing to refresh, compress or drop';
                RETURN NEXT;
                CONTINUE;
            END IF;
            policy := 'retention'; action := 'tower-jobs';
            detail := CASE WHEN p.retention IS NULL THEN 'keep forever'
                           ELSE format('drop_chunks older than %s, run by `tower jobs` (ops.enforce_retention)', p.retention) END;
            RETURN NEXT;
            IF p.compress_after IS NOT NULL THEN
                policy := 'compression'; action := 'skipped';
                detail := 'compression needs the TimescaleDB community (TSL) build';
                RETURN NEXT;
            END IF;
            CONTINUE;
        END IF;

        -- Refresh (caggs)
        IF p.kind = 'cagg' THEN
            policy := 'refresh';
            SELECT * INTO j FROM ops.policy_job(p.relation, 'policy_refresh_continuous_aggregate');
            IF j.job_id IS NOT NULL AND (j.schedule_interval IS DISTINCT FROM p.refresh_every
                    OR (j.config->>'start_offset')::interval IS DISTINCT FROM p.refresh_start_offset
                    OR (j.config->>'end_offset')::interval IS DISTINCT FROM p.refresh_end_offset) THEN
                PERFORM remove_continuous_aggregate_policy(p.relation::regclass);
                j.job_id := NULL;
                action := 'replaced';
            ELSE
                action := CASE WHEN j.job_id IS NULL THEN 'added' ELSE 'unchanged' END;
            END IF;
            IF j.job_id IS NULL THEN
                j.job_id := add_continuous_aggregate_policy(p.relation::regclass,
                    start_offset => p.refresh_start_offset, end_offset => p.refresh_end_offset,
                    schedule_interval => p.refresh_every);
            END IF;
            detail := format('job %s: every %s, window [now-%s, now-%s)', j.job_id, p.refresh_every,
                             p.refresh_start_offset, p.refresh_end_offset);
            RETURN NEXT;
        END IF;

        -- Compression
        policy := 'compression';
        SELECT * INTO j FROM ops.policy_job(p.relation, 'policy_compression');
        IF p.compress_after IS NULL THEN
            IF j.job_id IS NOT NULL THEN
                PERFORM remove_compression_policy(p.relation::regclass);
                action := 'removed'; detail := format('job %s removed; compressed chunks stay compressed', j.job_id);
            ELSE
                action := 'none'; detail := 'not compressed';
            END IF;
            RETURN NEXT;
        ELSE
            IF p.kind = 'cagg' THEN
                SELECT ca.compression_enabled INTO enabled FROM timescaledb_information.continuous_aggregates ca
                WHERE format('%I.%I', ca.view_schema, ca.view_name)::regclass = p.relation::regclass;
                IF NOT enabled THEN
                    EXECUTE format('ALTER MATERIALIZED VIEW %s SET (timescaledb.compress = true)', p.relation::regclass);
                END IF;
            ELSE
                SELECT h.compression_enabled INTO enabled FROM timescaledb_information.hypertables h
                WHERE format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass = p.relation::regclass;
                IF NOT enabled THEN
                    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                                   p.relation::regclass, p.segment_by, p.order_by);
                END IF;
            END IF;
            IF j.job_id IS NOT NULL AND (j.config->>'compress_after')::interval IS DISTINCT FROM p.compress_after THEN
                PERFORM remove_compression_policy(p.relation::regclass);
                j.job_id := NULL;
                action := 'replaced';
            ELSE
                action := CASE WHEN j.job_id IS NULL THEN 'added' ELSE 'unchanged' END;
            END IF;
            IF j.job_id IS NULL THEN
                j.job_id := add_compression_policy(p.relation::regclass, compress_after => p.compress_after);
            END IF;
            detail := format('job %s: compress chunks older than %s', j.job_id, p.compress_after);
            RETURN NEXT;
        END IF;

        -- Retention
        policy := 'retention';
        SELECT * INTO j FROM ops.policy_job(p.relation, 'policy_retention');
        IF j.job_id IS NOT NULL AND (p.retention IS NULL
                OR (j.config->>'drop_after')::interval IS DISTINCT FROM p.retention) THEN
            PERFORM remove_retention_policy(p.relation::regclass);
            action := CASE WHEN p.retention IS NULL THEN 'removed' ELSE 'replaced' END;
            j.job_id := NULL;
        ELSE
            action := CASE WHEN p.retention IS NULL THEN 'none'
                           WHEN j.job_id IS NULL THEN 'added' ELSE 'unchanged' END;
        END IF;
        IF p.retention IS NOT NULL AND j.job_id IS NULL THEN
            j.job_id := add_retention_policy(p.relation::regclass, drop_after => p.retention);
        END IF;
        detail := CASE WHEN p.retention IS NULL THEN 'keep forever'
                       ELSE format('job %s: drop chunks older than %s', j.job_id, p.retention) END;
        RETURN NEXT;
    END LOOP;
END $$;

-- enforce_retention(): the Apache-license retention, run by `tower jobs` on a schedule.
-- Under TSL the retention jobs do this, so it does nothing there.
CREATE OR REPLACE FUNCTION ops.enforce_retention()
RETURNS TABLE (relation text, older_than interval, chunks_dropped integer)
LANGUAGE plpgsql AS $$
DECLARE
    p ops.policy_settings;
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        RETURN;
    END IF;
    FOR p IN SELECT * FROM ops.policy_settings s
             WHERE s.kind = 'hypertable' AND s.retention IS NOT NULL ORDER BY s.relation LOOP
        relation := p.relation;
        older_than := p.retention;
        SELECT count(*) INTO chunks_dropped FROM drop_chunks(p.relation::regclass, older_than => p.retention);
        RETURN NEXT;
    END LOOP;
END $$;
