-- continuous: ops.derivs_1m
-- Mark/index/funding/OI per minute. Each field's last value ignores messages that did not carry it.
SELECT
    time_bucket(INTERVAL '1 minute', ts)                                            AS bucket,
    venue,
    symbol,
    count(*)                                                                        AS updates,
    count(*) FILTER (WHERE mark_px IS NOT NULL AND index_px IS NOT NULL)            AS basis_samples,
    sum((mark_px - index_px) / index_px * 1e4)                                      AS basis_bps_sum,
    min((mark_px - index_px) / index_px * 1e4)                                      AS basis_bps_min,
    max((mark_px - index_px) / index_px * 1e4)                                      AS basis_bps_max,
    last(mark_px, ts) FILTER (WHERE mark_px IS NOT NULL)                            AS mark_close,
    last(index_px, ts) FILTER (WHERE index_px IS NOT NULL)                          AS index_close,
    last(funding_rate, ts) FILTER (WHERE funding_rate IS NOT NULL)                  AS funding_rate,
    last(funding_interval, ts) FILTER (WHERE funding_interval IS NOT NULL)          AS funding_interval,
    last(next_funding_ts, ts) FILTER (WHERE next_funding_ts IS NOT NULL)            AS next_funding_ts,
    first(open_interest, ts) FILTER (WHERE open_interest IS NOT NULL)               AS oi_open,
    last(open_interest, ts) FILTER (WHERE open_interest IS NOT NULL)                AS oi_close,
    max(ts)                                                                         AS last_ts
FROM ops.raw_derivs
GROUP BY time_bucket(INTERVAL '1 minute', ts), venue, symbol
