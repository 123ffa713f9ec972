-- How a backfill attempt ended. $1 gap id, $2 resolution, $3 rows newly stored, $4 finished: the history
-- was read to its end (resolved_at set); an attempt cut short by the venue's REST leaves the gap open.
UPDATE ops.feed_gaps
SET resolution = $2,
    backfilled = coalesce(backfilled, 0) + $3,
    resolved_at = CASE WHEN $4 THEN now() END
WHERE id = $1
