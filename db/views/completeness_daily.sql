-- ops.completeness_daily: how much of each market's day can be trusted, from the per-minute quality of
-- ops.features_1m and the gap ledger (ops.feed_gaps). Filter on day: it reaches features_1m's bucket.
CREATE VIEW ops.completeness_daily AS
WITH minutes AS (
    SELECT venue, symbol, time_bucket(INTERVAL '1 day', bucket) AS day,
           count(*) FILTER (WHERE sample_count > 0) AS minutes_with_data,
           count(*) FILTER (WHERE complete)         AS minutes_complete
    FROM ops.features_1m
    GROUP BY venue, symbol, time_bucket(INTERVAL '1 day', bucket)
),
gaps AS (
    SELECT venue, symbol, time_bucket(INTERVAL '1 day', coalesce(from_ts, detected_at)) AS day,
           count(*)                                          AS gaps,
           count(*) FILTER (WHERE resolution = 'backfilled') AS gaps_backfilled,
           count(*) FILTER (WHERE resolved_at IS NULL)       AS gaps_open
    FROM ops.feed_gaps
    WHERE stream <> 'depth'  -- depth-book breaks say nothing about the trade/L1 minutes counted here
    GROUP BY venue, symbol, time_bucket(INTERVAL '1 day', coalesce(from_ts, detected_at))
)
SELECT
    m.venue,
    m.symbol,
    m.day,
    m.minutes_with_data,
    m.minutes_complete,
    coalesce(g.gaps, 0)            AS gaps,
    coalesce(g.gaps_backfilled, 0) AS gaps_backfilled,
    coalesce(g.gaps_open, 0)       AS gaps_open,
    -- Of the day's minutes (today: those elapsed so far), not of the minutes with data: a silent minute
    -- is not a complete one.
    round((100.0 * m.minutes_complete / greatest(1, least(1440,
        ceil(extract(epoch FROM now() - m.day) / 60))))::numeric, 2)::float8 AS pct_complete
FROM minutes m
LEFT JOIN gaps g USING (venue, symbol, day);

COMMENT ON VIEW ops.completeness_daily IS
    'Completeness ledger per market and UTC day: minutes with data, complete minutes (ops.features_1m.complete), gaps and how they ended';
COMMENT ON COLUMN ops.completeness_daily.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.completeness_daily.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.completeness_daily.day IS 'UTC day (start), data time';
COMMENT ON COLUMN ops.completeness_daily.minutes_with_data IS 'minutes of the day with at least one book update or trade';
COMMENT ON COLUMN ops.completeness_daily.minutes_complete IS
    'minutes with no open gap and book coverage >= 0.5 (ops.features_1m.complete)';
COMMENT ON COLUMN ops.completeness_daily.gaps IS 'feed gaps starting that day (ops.feed_gaps, by from_ts, else detected_at)';
COMMENT ON COLUMN ops.completeness_daily.gaps_backfilled IS 'of them, fully recovered from the venue''s REST (resolution backfilled)';
COMMENT ON COLUMN ops.completeness_daily.gaps_open IS 'of them, still open (resolved_at NULL: unavailable, failed or not tried yet)';
COMMENT ON COLUMN ops.completeness_daily.pct_complete IS
    'complete minutes as % of the day''s 1440 minutes (today: of the minutes elapsed so far); 0..100';
