-- Events still pending or firing, whatever their age (the time filter does not hide an open event).
-- symbol '*' marks venue-wide events (e.g. a feed down): they stay visible when a symbol is selected.
SELECT
    e.id,
    e.severity,
    e.state,
    e.rule,
    e.venue,
    e.symbol,
    e.opened_at,
    e.fired_at,
    round(extract(epoch FROM now() - e.opened_at)::numeric / 60, 1)::float8  AS age_min,
    e.last_value,
    e.peak_value,
    e.threshold,
    e.inhibited_by,
    e.message
FROM ops.risk_events e
WHERE e.state IN ('pending', 'firing')
[[AND e.venue = {{venue}}]]
[[AND (e.symbol = {{symbol}} OR e.symbol = '*')]]
ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
         CASE e.state WHEN 'firing' THEN 0 ELSE 1 END, e.opened_at
