-- `tower instruments activate|deactivate VENUE SYMBOL`: a user's choice. A deactivation by a user is kept
-- even when data arrives (activate.sql skips it); activating clears it. $1 venue, $2 symbol, $3 active.
UPDATE ops.instruments
SET active = $3,
    deactivated_at = CASE WHEN $3 THEN NULL ELSE now() END,
    deactivated_by = CASE WHEN $3 THEN NULL ELSE 'user' END
WHERE venue = $1 AND symbol = $2
RETURNING venue
