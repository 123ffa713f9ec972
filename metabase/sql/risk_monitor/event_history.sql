-- Every event opened in the window, with how long it lasted and what was sent about it.
SELECT
    e.id,
    e.venue,
    e.symbol,
    e.rule,
    e.severity,
    e.state,
    e.opened_at,
    e.fired_at,
    e.resolved_at,
    round(extract(epoch FROM coalesce(e.resolved_at, e.last_seen) - e.opened_at)::numeric / 60, 1)::float8
                                                                     AS duration_min,
    e.peak_value,
    e.inhibited_by,
    coalesce(d.sent, 0)                                              AS alerts_sent,
    coalesce(d.failed, 0)                                            AS alerts_failed
FROM ops.risk_events e
LEFT JOIN (
    SELECT a.event_id,
           count(*) FILTER (WHERE a.status = 'sent')   AS sent,
           count(*) FILTER (WHERE a.status = 'failed') AS failed
    FROM ops.alert_deliveries a
    GROUP BY a.event_id
) d ON d.event_id = e.id
WHERE e.opened_at > now() - {{hours}} * INTERVAL '1 hour'
[[AND e.venue = {{venue}}]]
[[AND (e.symbol = {{symbol}} OR e.symbol = '*')]]
ORDER BY e.opened_at DESC, e.id DESC
