-- Job health under both licenses in one query: TimescaleDB policy jobs come from ops.policy_jobs (a view over
-- timescaledb_information.jobs/job_stats; empty under the Apache license, which has no policies), the
-- tower jobs service's own runs from ops.job_runs (its 'heartbeat' job is the service's liveness under Apache).
SELECT * FROM (
    SELECT
        'timescaledb'                                                         AS source,
        pj.relation || ' ' || pj.policy                                       AS job,
        coalesce(pj.last_run_status, 'not run yet')                           AS last_status,
        pj.last_run_started_at                                                AS last_run_at,
        round(extract(epoch FROM now() - pj.last_run_started_at)::numeric)::float8 AS last_run_age_s,
        pj.next_start,
        coalesce(pj.total_runs, 0)                                            AS runs,
        coalesce(pj.total_failures, 0)                                        AS failures,
        CASE WHEN pj.last_run_status = 'Failed' THEN 'failing'
             WHEN pj.next_start < now() - 2 * pj.schedule_interval THEN 'late'
             ELSE 'ok' END                                                    AS health
    FROM ops.policy_jobs pj
    UNION ALL
    SELECT
        'tower jobs',
        r.job,
        CASE WHEN last.ok THEN 'Success' WHEN NOT last.ok THEN 'Failed' ELSE 'Running' END,
        last.started_at,
        round(extract(epoch FROM now() - last.started_at)::numeric)::float8,
        NULL::timestamptz,
        r.runs,
        r.failures,
        -- The heartbeat is written every minute; five minutes without one means the service is down.
        CASE WHEN last.ok = false THEN 'failing'
             WHEN r.job = 'heartbeat' AND now() - last.started_at > INTERVAL '5 minutes' THEN 'stale'
             ELSE 'ok' END
    FROM (
        SELECT j.job, count(*) AS runs, count(*) FILTER (WHERE j.ok = false) AS failures
        FROM ops.job_runs j
        WHERE j.started_at > now() - {{hours}} * INTERVAL '1 hour'
        GROUP BY j.job
    ) r
    CROSS JOIN LATERAL (
        SELECT j.ok, j.started_at FROM ops.job_runs j WHERE j.job = r.job ORDER BY j.started_at DESC LIMIT 1
    ) last
) jobs
ORDER BY health = 'ok', source, job
