-- Input the connectors refused, by reason and venue, in the selected window.
SELECT
    r.reason,
    r.venue,
    count(*)          AS rejected,
    max(r.recv_ts)    AS last_at
FROM ops.rejected_messages r
WHERE r.recv_ts > now() - {{hours}} * INTERVAL '1 hour'
[[AND r.venue = {{venue}}]]
[[AND r.symbol = {{symbol}}]]
GROUP BY r.reason, r.venue
ORDER BY rejected DESC, r.reason, r.venue
