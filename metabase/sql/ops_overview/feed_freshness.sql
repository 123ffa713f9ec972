-- Last message per active market and how old it is, message rate, and second coverage over the last 5 minutes.
-- Each lookup is an index scan on (venue, symbol, ts DESC) bounded by the time filter, so this stays
-- cheap at a 60 s auto-refresh. Status: stale past 10 s, down past 60 s, 'no data' in the window.
SELECT
    i.venue,
    i.symbol,
    i.asset,
    greatest(b.last_recv_ts, t.last_recv_ts)                                        AS last_message_at,
    round(extract(epoch FROM now() - greatest(b.last_recv_ts, t.last_recv_ts))::numeric, 1)::float8
                                                                                    AS last_message_age_s,
    CASE
        WHEN greatest(b.last_recv_ts, t.last_recv_ts) IS NULL THEN 'no data'
        WHEN now() - greatest(b.last_recv_ts, t.last_recv_ts) > INTERVAL '60 seconds' THEN 'down'
        WHEN now() - greatest(b.last_recv_ts, t.last_recv_ts) > INTERVAL '10 seconds' THEN 'stale'
        ELSE 'ok'
    END                                                                             AS status,
    round(b5.updates / 5.0, 1)::float8                                              AS book_msgs_per_min,
    round(t5.trades / 5.0, 1)::float8                                               AS trade_msgs_per_min,
    round(100.0 * b5.active_seconds / 300, 1)::float8                               AS book_coverage_5m_pct
FROM ops.instruments i
LEFT JOIN LATERAL (
    SELECT r.recv_ts AS last_recv_ts FROM ops.raw_book_l1 r
    WHERE r.venue = i.venue AND r.symbol = i.symbol AND r.ts > now() - {{hours}} * INTERVAL '1 hour'
    ORDER BY r.ts DESC LIMIT 1
) b ON true
LEFT JOIN LATERAL (
    SELECT r.recv_ts AS last_recv_ts FROM ops.raw_trades r
    WHERE r.venue = i.venue AND r.symbol = i.symbol AND r.ts > now() - {{hours}} * INTERVAL '1 hour'
    ORDER BY r.ts DESC LIMIT 1
) t ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS updates, count(DISTINCT date_trunc('second', r.ts)) AS active_seconds
    FROM ops.raw_book_l1 r
    WHERE r.venue = i.venue AND r.symbol = i.symbol AND r.ts > now() - INTERVAL '5 minutes'
) b5 ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS trades FROM ops.raw_trades r
    WHERE r.venue = i.venue AND r.symbol = i.symbol AND r.ts > now() - INTERVAL '5 minutes'
) t5 ON true
WHERE i.active
[[AND i.venue = {{venue}}]]
[[AND i.symbol = {{symbol}}]]
ORDER BY CASE WHEN greatest(b.last_recv_ts, t.last_recv_ts) IS NULL THEN 0 ELSE 1 END,
         last_message_age_s DESC NULLS FIRST, i.venue, i.symbol
