-- Gaps a backfill may still fill: not resolved, not known to be unfillable, of the given markets and recent
-- enough for the venue's REST history to hold them. $1 venue, $2 symbols, $3 detected after.
SELECT id, venue, symbol, stream, from_id, to_id, missing, from_ts, to_ts
FROM ops.feed_gaps
WHERE resolved_at IS NULL AND stream <> 'depth'  -- a depth break is closed by its resync: no history to fetch
  AND resolution IS DISTINCT FROM 'unavailable'
  AND venue = $1 AND symbol = any($2::text[])
  AND detected_at >= $3
ORDER BY detected_at
