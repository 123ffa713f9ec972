-- Alert deliveries in the window per venue, sink, kind and status; failures with their last error.
SELECT
    e.venue,
    a.sink,
    a.kind,
    a.status,
    count(*)                                                              AS deliveries,
    max(a.created_at)                                                     AS last_at,
    (array_agg(a.error ORDER BY a.created_at DESC) FILTER (WHERE a.error IS NOT NULL))[1] AS last_error
FROM ops.alert_deliveries a
JOIN ops.risk_events e ON e.id = a.event_id
WHERE a.created_at > now() - {{hours}} * INTERVAL '1 hour'
[[AND e.venue = {{venue}}]]
[[AND (e.symbol = {{symbol}} OR e.symbol = '*')]]
GROUP BY e.venue, a.sink, a.kind, a.status
ORDER BY a.status <> 'sent' DESC, deliveries DESC, e.venue, a.sink, a.kind
