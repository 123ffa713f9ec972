-- Per venue/symbol feed health for `tower status`. Counts look at recent data only, through the
-- (venue, symbol, ts) indexes, so this stays cheap on a large table.
WITH symbols AS (
    SELECT venue, symbol FROM ops.instruments WHERE active
),
last_msg AS (
    SELECT s.venue, s.symbol, greatest(t.recv_ts, b.recv_ts) AS last_recv
    FROM symbols s
    LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_trades r WHERE r.venue = s.venue AND r.symbol = s.symbol
                       ORDER BY ts DESC LIMIT 1) t ON true
    LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_book_l1 r WHERE r.venue = s.venue AND r.symbol = s.symbol
                       ORDER BY ts DESC LIMIT 1) b ON true
),
last_derivs AS (
    SELECT s.venue, s.symbol, d.recv_ts AS last_recv
    FROM symbols s
    LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_derivs r WHERE r.venue = s.venue AND r.symbol = s.symbol
                       ORDER BY ts DESC LIMIT 1) d ON true
),
last_depth AS (
    -- Order-book depth samples (ops.raw_book_depth): only markets whose venue keeps full books have any.
    SELECT s.venue, s.symbol, d.recv_ts AS last_recv
    FROM symbols s
    LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_book_depth r WHERE r.venue = s.venue AND r.symbol = s.symbol
                       ORDER BY ts DESC LIMIT 1) d ON true
),
recent AS (
    SELECT venue, symbol, count(*) AS n FROM (
        SELECT venue, symbol FROM ops.raw_trades WHERE ts > now() - INTERVAL '5 minutes'
        UNION ALL
        SELECT venue, symbol FROM ops.raw_book_l1 WHERE ts > now() - INTERVAL '5 minutes'
    ) m GROUP BY venue, symbol
),
reconnects AS (
    SELECT venue, count(*) AS n FROM ops.connection_events
    WHERE event = 'reconnect_attempt' AND ts >= date_trunc('day', now()) GROUP BY venue
),
gaps AS (
    SELECT venue, symbol, count(*) AS n FROM ops.feed_gaps
    WHERE resolved_at IS NULL AND stream <> 'depth'  -- depth breaks are closed by their resync
    GROUP BY venue, symbol
),
complete AS (
    -- Of the closed minutes of the last 24 h since the market's first data in them, those ops.features_1m
    -- counts complete (no open gap, book coverage): a feed down for hours shows, a fresh install does not
    -- look 99 % broken for its first day.
    SELECT venue, symbol, count(*) FILTER (WHERE complete) AS n,
           extract(epoch FROM date_trunc('minute', now()) - min(bucket))::float8 / 60 AS minutes
    FROM ops.features_1m
    WHERE bucket >= date_trunc('minute', now()) - INTERVAL '24 hours' AND bucket < date_trunc('minute', now())
    GROUP BY venue, symbol
),
overload AS (
    -- The writer's overload policy (migration 0805): L1 updates conflated per symbol, reader pauses per venue.
    SELECT venue, symbol, sum(conflated) AS n FROM ops.connection_events
    WHERE event = 'conflating' AND ts >= date_trunc('day', now()) GROUP BY venue, symbol
),
pauses AS (
    SELECT venue, extract(epoch FROM sum(ts - since))::float8 AS s FROM ops.connection_events
    WHERE event = 'paused' AND ts >= date_trunc('day', now()) GROUP BY venue
),
rejected AS (
    SELECT venue, symbol, count(*) AS n FROM ops.rejected_messages
    WHERE recv_ts >= date_trunc('day', now()) GROUP BY venue, symbol
)
SELECT l.venue, l.symbol,
       extract(epoch FROM now() - l.last_recv)::float8 AS last_age_s,
       extract(epoch FROM now() - d.last_recv)::float8 AS derivs_age_s,
       coalesce(r.n, 0) / 5.0                          AS msgs_per_min,
       coalesce(c.n, 0)                                AS reconnects_today,
       coalesce(g.n, 0)                                AS open_gaps,
       coalesce(j.n, 0)                                AS rejected_today,
       coalesce(100.0 * k.n / nullif(k.minutes, 0), 0) AS complete_24h_pct,
       coalesce(o.n, 0)                                AS conflated_today,
       coalesce(p.s, 0)                                AS paused_today_s,
       extract(epoch FROM now() - b.last_recv)::float8 AS depth_age_s
FROM last_msg l
JOIN last_derivs d USING (venue, symbol)
JOIN last_depth b USING (venue, symbol)
LEFT JOIN recent r USING (venue, symbol)
LEFT JOIN reconnects c USING (venue)
LEFT JOIN gaps g USING (venue, symbol)
LEFT JOIN rejected j USING (venue, symbol)
LEFT JOIN complete k USING (venue, symbol)
LEFT JOIN overload o USING (venue, symbol)
LEFT JOIN pauses p USING (venue)
ORDER BY l.venue, l.symbol
