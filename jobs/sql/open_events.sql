-- Open (pending or firing) risk events: at most one per rule and market (unique partial index).
SELECT id, rule, venue, symbol, severity, state, opened_at, fired_at, resolved_at, first_seen, last_seen,
       peak_value, last_value, threshold, inhibited_by, message, last_notified_at, silenced_by, acked_at
FROM ops.risk_events
WHERE state IN ('pending', 'firing')
