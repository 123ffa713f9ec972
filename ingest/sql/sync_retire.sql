-- After sync_listed.sql: the venue's instruments that are not open for trading (delisted, settling,
-- suspended) or that its list no longer has ('not listed') are deactivated. Returns the ones that were
-- active until now. $1 venue, $2 every listed symbol, $3 the listed symbols open for trading.
UPDATE ops.instruments i
SET status = CASE WHEN i.symbol = any($2::text[]) THEN i.status ELSE 'not listed' END,
    active = false,
    deactivated_at = CASE WHEN o.was_active THEN now() ELSE i.deactivated_at END,
    deactivated_by = CASE WHEN o.was_active THEN 'sync' ELSE i.deactivated_by END
FROM (SELECT symbol, active AS was_active FROM ops.instruments WHERE venue = $1 FOR UPDATE) o
WHERE i.venue = $1 AND o.symbol = i.symbol AND NOT (i.symbol = any($3::text[]))
RETURNING i.symbol, o.was_active
