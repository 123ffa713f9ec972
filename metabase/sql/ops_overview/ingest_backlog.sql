-- Each ingest process's latest heartbeat (ops.ingest_heartbeats, written every minute) in the last
-- 24 hours: its writer queue and spill. 'stale' = no heartbeat for 3 minutes (stopped or cut off).
SELECT
    h.host,
    h.pid,
    array_to_string(h.venues, ', ')                                AS venues,
    h.ts                                                           AS last_heartbeat,
    round(extract(epoch FROM now() - h.ts)::numeric)::float8       AS age_s,
    h.queued_groups,
    h.pending_rows,
    round(h.spill_bytes / 1048576.0, 2)::float8                    AS spill_mb,
    CASE WHEN h.spill_bytes > 0 THEN 'spilling'
         WHEN now() - h.ts > INTERVAL '3 minutes' THEN 'stale'
         ELSE 'ok' END                                             AS health
FROM (
    SELECT DISTINCT ON (host, pid) *
    FROM ops.ingest_heartbeats
    WHERE ts > now() - INTERVAL '24 hours'
    ORDER BY host, pid, ts DESC
) h
ORDER BY (h.spill_bytes > 0 OR now() - h.ts > INTERVAL '3 minutes') DESC, h.ts DESC
