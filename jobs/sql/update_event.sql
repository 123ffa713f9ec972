UPDATE ops.risk_events SET
    severity = $2, state = $3, fired_at = $4, resolved_at = $5, last_seen = $6, peak_value = $7,
    last_value = $8, inhibited_by = $9, message = $10, last_notified_at = $11, silenced_by = $12, updated_at = now()
WHERE id = $1
