-- Venues and symbols with gaps a backfill may still fill, detected since $1 ($2: one venue, NULL: all).
SELECT venue, array_agg(DISTINCT symbol ORDER BY symbol) AS symbols
FROM ops.feed_gaps
WHERE resolved_at IS NULL AND stream <> 'depth'  -- a depth break is closed by its resync: no history to fetch AND resolution IS DISTINCT FROM 'unavailable'
  AND detected_at >= $1 AND ($2::text IS NULL OR venue = $2)
GROUP BY venue
ORDER BY venue
