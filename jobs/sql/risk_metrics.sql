-- Raw risk metrics per active instrument and minute in [$1, $2), from ops.features_1m, the
-- derivatives context (funding, basis, liquidations) of ops.derivs_features_1m and the order-book
-- depth (within 25 bps, slippage of the standard order) of ops.depth_features_1m.
-- $1 first minute, $2 end (exclusive), $3 baseline window (interval), $4 minimum baseline minutes,
-- $5 realized-volatility window (minutes), $6 quote age (s) beyond which a venue's mid is ignored
-- for divergence, $7 minimum trades in a minute for its flow imbalance to count, $8 look-back
-- (interval, >= baseline and volatility windows), $9 history boundary: look-back minutes before $9
-- come from ops.risk_scores (already scored), minutes from $9 on from ops.features_1m.
-- Every value depends only on data time, never on now(): a minute scores the same live or in catch-up.
WITH grid AS (
    -- A dense minute grid (look-back included) so window frames count minutes, not rows with data.
    SELECT g.bucket, i.venue, i.symbol, i.asset
    FROM generate_series($1::timestamptz - $8::interval, $2::timestamptz - INTERVAL '1 minute',
                         INTERVAL '1 minute') AS g (bucket)
    CROSS JOIN ops.instruments i
    WHERE i.active
),
minutes AS (
    -- Each minute is joined to exactly one source, so coalesce picks that source's value.
    SELECT g.bucket, g.venue, g.symbol, g.asset,
           coalesce(f.spread_bps_mean, h.spread_bps)                        AS spread_bps_mean,
           coalesce(f.depth_notional_mean, h.depth_notional)                AS depth_notional_mean,
           f.book_imbalance_mean,
           CASE WHEN f.trade_count >= $7 THEN f.flow_imbalance END          AS flow_imbalance,
           coalesce(f.mid_close, h.mid)                                     AS mid_close,
           f.latency_ms_mean,
           coalesce(f.last_update_ts, h.last_update_ts)                     AS last_update_ts,
           coalesce(b.active_seconds, 0)::float8 / 60                       AS coverage,
           extract(epoch FROM g.bucket + INTERVAL '1 minute' - b.last_ts)::float8 AS quote_age_s,
           coalesce(dp.depth_25bps, h.depth_25bps)                          AS depth_25bps,
           coalesce(dp.slip_bps_max, h.slip_bps)                            AS slip_bps
    FROM grid g
    LEFT JOIN ops.risk_scores h
           ON h.bucket = g.bucket AND h.venue = g.venue AND h.symbol = g.symbol
          AND h.bucket >= $1::timestamptz - $8::interval AND h.bucket < $9::timestamptz
    LEFT JOIN ops.features_1m f
           ON f.bucket = g.bucket AND f.venue = g.venue AND f.symbol = g.symbol
          AND f.bucket >= $9::timestamptz AND f.bucket < $2::timestamptz
    LEFT JOIN ops.depth_features_1m dp
           ON dp.bucket = g.bucket AND dp.venue = g.venue AND dp.symbol = g.symbol
          AND dp.bucket >= $9::timestamptz AND dp.bucket < $2::timestamptz
    LEFT JOIN ops.book_1m b
           ON b.bucket = g.bucket AND b.venue = g.venue AND b.symbol = g.symbol
          AND b.bucket >= $1::timestamptz AND b.bucket < $2::timestamptz
),
returns AS (
    SELECT m.*,
           ln(m.mid_close / lag(m.mid_close) OVER (PARTITION BY m.venue, m.symbol ORDER BY m.bucket)) AS ret,
           max(m.last_update_ts) OVER (PARTITION BY m.venue, m.symbol ORDER BY m.bucket
                                       ROWS UNBOUNDED PRECEDING)            AS seen_ts
    FROM minutes m
),
windowed AS (
    SELECT r.*,
           array_agg(r.spread_bps_mean) OVER baseline                        AS spread_hist,
           array_agg(r.depth_notional_mean) OVER baseline                    AS depth_hist,
           count(r.spread_bps_mean) OVER baseline                            AS baseline_n,
           -- Depth has its own count: a market may have L1 quotes but no full book, or books for
           -- only part of the window (a venue added later).
           array_agg(r.depth_25bps) OVER baseline                            AS depth_25bps_hist,
           count(r.depth_25bps) OVER baseline                                AS depth_25bps_n,
           array_agg(r.slip_bps) OVER baseline                               AS slip_hist,
           count(r.slip_bps) OVER baseline                                   AS slip_n,
           stddev_samp(r.ret) OVER (PARTITION BY r.venue, r.symbol ORDER BY r.bucket
                                    ROWS BETWEEN $5::int - 1 PRECEDING AND CURRENT ROW) AS vol
    FROM returns r
    WINDOW baseline AS (PARTITION BY r.venue, r.symbol ORDER BY r.bucket
                        RANGE BETWEEN $3::interval PRECEDING AND INTERVAL '1 minute' PRECEDING)
),
scored AS (
    SELECT w.*,
           CASE WHEN w.baseline_n >= $4 THEN ops.median(w.spread_hist) END   AS spread_median,
           CASE WHEN w.baseline_n >= $4 THEN ops.mad(w.spread_hist) END      AS spread_mad,
           CASE WHEN w.baseline_n >= $4 THEN ops.median(w.depth_hist) END    AS depth_median,
           CASE WHEN w.depth_25bps_n >= $4 THEN ops.median(w.depth_25bps_hist) END AS depth_25bps_median,
           CASE WHEN w.slip_n >= $4 THEN ops.median(w.slip_hist) END         AS slip_median
    FROM windowed w
    WHERE w.bucket >= $1::timestamptz
),
divergence AS (
    -- Mid vs the median mid of the other venues for the same asset, same minute, both quotes fresh.
    SELECT a.bucket, a.venue, a.symbol,
           (a.mid_close / percentile_cont(0.5) WITHIN GROUP (ORDER BY o.mid_close) - 1) * 1e4 AS divergence_bps,
           count(*)                                                          AS peers
    FROM scored a
    JOIN scored o ON o.asset = a.asset AND o.bucket = a.bucket AND o.venue <> a.venue
    WHERE a.quote_age_s <= $6 AND o.quote_age_s <= $6
    GROUP BY a.bucket, a.venue, a.symbol, a.mid_close
),
derivs AS (
    -- Derivatives context of the scored minutes (no baseline). The view merges its sources with
    -- UNION ALL + GROUP BY, so this bucket filter reaches both (db/views/derivs_features_1m.sql).
    SELECT bucket, venue, symbol, funding_8h * 1e4 AS funding_8h_bps, basis_bps_mean AS basis_bps,
           liq_notional
    FROM ops.derivs_features_1m
    WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz
)
SELECT s.bucket, s.venue, s.symbol, s.asset,
       s.spread_bps_mean                                                     AS spread_bps,
       s.spread_median, s.spread_mad,
       s.depth_notional_mean                                                 AS depth_notional,
       s.depth_median,
       CASE WHEN s.depth_median > 0 AND s.depth_notional_mean IS NOT NULL
            THEN greatest(0, 1 - s.depth_notional_mean / s.depth_median) * 100 END AS depth_drop_pct,
       s.book_imbalance_mean                                                 AS book_imbalance,
       s.flow_imbalance,
       s.vol * 1e4                                                           AS realized_vol_bps,
       abs(s.ret) * 1e4                                                      AS jump_bps,
       s.mid_close                                                           AS mid,
       s.seen_ts                                                             AS last_update_ts,
       -- Capped at the look-back: older (or never) is reported as that lower bound, the same
       -- whether the last update was found in raw features or carried in the scored history.
       least(coalesce(extract(epoch FROM s.bucket + INTERVAL '1 minute' - s.seen_ts)::float8, 'Infinity'),
             extract(epoch FROM $8::interval + INTERVAL '1 minute')::float8) AS freshness_s,
       s.coverage,
       s.quote_age_s,
       s.latency_ms_mean                                                     AS latency_ms,
       d.divergence_bps,
       coalesce(d.peers, 0)                                                  AS divergence_peers,
       x.funding_8h_bps,
       x.basis_bps,
       x.liq_notional,
       s.depth_25bps,
       CASE WHEN s.depth_25bps_median > 0 AND s.depth_25bps IS NOT NULL
            THEN greatest(0, 1 - s.depth_25bps / s.depth_25bps_median) * 100 END AS depth_25bps_drop_pct,
       s.slip_bps,
       s.slip_median
FROM scored s
LEFT JOIN divergence d ON d.bucket = s.bucket AND d.venue = s.venue AND d.symbol = s.symbol
LEFT JOIN derivs x ON x.bucket = s.bucket AND x.venue = s.venue AND x.symbol = s.symbol
ORDER BY s.bucket, s.venue, s.symbol
