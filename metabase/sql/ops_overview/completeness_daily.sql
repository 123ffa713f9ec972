-- Completeness ledger (ops.completeness_daily): per market and UTC day of the last 7 days, the share of
-- the day's minutes that were complete (no open gap, book coverage >= 0.05) and how its gaps ended.
SELECT
    c.venue,
    c.symbol,
    c.day,
    c.pct_complete,
    c.minutes_complete,
    c.minutes_with_data,
    c.gaps,
    c.gaps_backfilled,
    c.gaps_open
FROM ops.completeness_daily c
WHERE c.day >= time_bucket(INTERVAL '1 day', now() - INTERVAL '7 days')
[[AND c.venue = {{venue}}]]
[[AND c.symbol = {{symbol}}]]
ORDER BY c.day DESC, c.pct_complete, c.venue, c.symbol
