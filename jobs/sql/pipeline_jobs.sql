-- TimescaleDB jobs of the ops schema (policies on its hypertables and continuous aggregates, named by
-- the relation; custom jobs whose procedure is in ops) and whether each is failing at $1 (wall time):
-- its last run failed, or, while scheduled, it has not succeeded within 3x its schedule. Jobs that
-- have never run have no job_stats row, and a job with nothing to judge yet (running for the first time,
-- never finished) is not failing. Empty under the Apache build.
SELECT j.job_id,
       j.proc_name || ' ' || coalesce(c.view_name, j.hypertable_name, j.proc_schema || '.' || j.proc_name)
           || ' (job ' || j.job_id || ')' AS name,
       coalesce(s.last_run_status = 'Failed', false)
        OR coalesce(j.scheduled AND s.last_successful_finish < $1::timestamptz - 3 * j.schedule_interval, false)
           AS failing
FROM timescaledb_information.jobs j
JOIN timescaledb_information.job_stats s USING (job_id)
LEFT JOIN timescaledb_information.continuous_aggregates c
    ON c.materialization_hypertable_schema = j.hypertable_schema
   AND c.materialization_hypertable_name = j.hypertable_name
WHERE j.job_id >= 1000 AND (j.hypertable_schema = 'ops' OR c.view_schema = 'ops' OR j.proc_schema = 'ops')
ORDER BY j.job_id
