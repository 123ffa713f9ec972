-- Per ingest process reporting in the data minute $1: 1 if it reports spilled bytes or a queue
-- (queued frame groups + pending rows) larger than its previous report within 5 minutes, else 0.
WITH last_in_minute AS (
    SELECT DISTINCT ON (host, pid) host, pid, ts, queued_groups + pending_rows AS queued, spill_bytes
    FROM ops.ingest_heartbeats
    WHERE ts >= $1::timestamptz AND ts < $1::timestamptz + interval '1 minute'
    ORDER BY host, pid, ts DESC
)
SELECT m.host || ':' || m.pid AS name,
       CASE WHEN m.spill_bytes > 0 OR m.queued > coalesce(p.queued, m.queued) THEN 1.0::float8 ELSE 0.0::float8 END AS backlog
FROM last_in_minute m
LEFT JOIN LATERAL (
    SELECT h.queued_groups + h.pending_rows AS queued
    FROM ops.ingest_heartbeats h
    WHERE h.host = m.host AND h.pid = m.pid AND h.ts < $1 AND h.ts >= $1::timestamptz - interval '5 minutes'
    ORDER BY h.ts DESC LIMIT 1
) p ON true
ORDER BY name
