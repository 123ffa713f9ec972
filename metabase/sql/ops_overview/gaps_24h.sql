-- Gaps in each market's tape detected in the last 24 hours (fixed window), and how many are still open.
SELECT
    g.venue,
    g.symbol,
    g.stream,
    count(*)                                            AS gaps,
    coalesce(sum(g.missing), 0)                         AS missing_messages,
    count(*) FILTER (WHERE g.resolved_at IS NULL)       AS open_gaps,
    max(g.detected_at)                                  AS last_gap_at,
    (array_agg(g.cause ORDER BY g.detected_at DESC))[1] AS last_cause
FROM ops.feed_gaps g
WHERE g.detected_at > now() - INTERVAL '24 hours'
[[AND g.venue = {{venue}}]]
[[AND g.symbol = {{symbol}}]]
GROUP BY g.venue, g.symbol, g.stream
ORDER BY open_gaps DESC, gaps DESC, g.venue, g.symbol, g.stream
