-- What each venue's connections went through in the last 24 hours (fixed window, not the time filter).
SELECT
    v.venue,
    coalesce(e.connects, 0)            AS connects,
    coalesce(e.disconnects, 0)         AS disconnects,
    coalesce(e.reconnect_attempts, 0)  AS reconnect_attempts,
    coalesce(e.stale_events, 0)        AS stale_events,
    coalesce(e.errors, 0)              AS errors,
    e.last_disconnect_at,
    e.last_reason
FROM (SELECT DISTINCT i.venue FROM ops.instruments i WHERE i.active [[AND i.venue = {{venue}}]]) v
LEFT JOIN (
    SELECT
        c.venue,
        count(*) FILTER (WHERE c.event = 'connect')            AS connects,
        count(*) FILTER (WHERE c.event = 'disconnect')         AS disconnects,
        count(*) FILTER (WHERE c.event = 'reconnect_attempt')  AS reconnect_attempts,
        count(*) FILTER (WHERE c.event = 'stale')              AS stale_events,
        count(*) FILTER (WHERE c.event = 'error')              AS errors,
        max(c.ts) FILTER (WHERE c.event = 'disconnect')        AS last_disconnect_at,
        (array_agg(c.reason ORDER BY c.ts DESC) FILTER (WHERE c.reason IS NOT NULL))[1] AS last_reason
    FROM ops.connection_events c
    WHERE c.ts > now() - INTERVAL '24 hours'
    [[AND c.venue = {{venue}}]]
    GROUP BY c.venue
) e ON e.venue = v.venue
ORDER BY disconnects DESC, v.venue
