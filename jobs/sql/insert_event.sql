INSERT INTO ops.risk_events
    (venue, symbol, rule, severity, state, opened_at, fired_at, resolved_at, first_seen, last_seen,
     peak_value, last_value, threshold, inhibited_by, message, last_notified_at, silenced_by, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
RETURNING id
