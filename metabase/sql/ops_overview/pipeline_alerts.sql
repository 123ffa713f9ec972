-- The tower's alerts about itself (scope = "pipeline" rules, venue 'tower': pipeline_job_failed,
-- ingest_backlog): open ones first, then those opened in the last 24 hours.
SELECT
    e.rule,
    e.symbol                                                       AS what,
    e.state,
    e.severity,
    e.opened_at,
    e.fired_at,
    e.resolved_at,
    e.acked_by,
    e.silenced_by,
    e.message
FROM ops.risk_events e
WHERE e.venue = 'tower'
  AND (e.state IN ('pending', 'firing') OR e.opened_at > now() - INTERVAL '24 hours')
ORDER BY e.state IN ('pending', 'firing') DESC, e.opened_at DESC
LIMIT 200
