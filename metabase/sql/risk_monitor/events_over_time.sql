-- Events opened per time slice and severity; the slice is the window / 48, at least one minute.
SELECT
    time_bucket(make_interval(mins => greatest(1, ({{hours}} * 60 / 48)::int)), e.opened_at) AS opened,
    e.severity,
    count(*)                                                                                AS events
FROM ops.risk_events e
WHERE e.opened_at > now() - {{hours}} * INTERVAL '1 hour'
[[AND e.venue = {{venue}}]]
[[AND (e.symbol = {{symbol}} OR e.symbol = '*')]]
GROUP BY 1, e.severity
ORDER BY 1, e.severity
