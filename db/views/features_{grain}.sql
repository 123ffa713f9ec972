-- grains: 1m, 1h
-- ops.features_1m and ops.features_1h: the relations dashboards and ad-hoc SQL read for market health
-- per minute and per hour. One definition, rendered by `tower migrate` once per grain listed above, so
-- the two cannot drift apart; PostgreSQL reads INTERVAL '1m' / '1h' as one minute / one hour. The
-- hourly sums come exactly from the 1-minute sums (ops.book_1h and ops.trades_1h roll them up).
-- Book and trade buckets are merged with UNION ALL + GROUP BY (not a FULL JOIN) so a filter on
-- bucket/venue/symbol is pushed down into both continuous aggregates.
-- sample_count and the coverage columns tell "no data" (0 samples) from "quiet market".
CREATE VIEW ops.features_{grain} AS
SELECT
    m.bucket,
    m.venue,
    m.symbol,
    i.asset,
    m.book_updates,
    m.spread_bps_sum / NULLIF(m.book_updates, 0)                       AS spread_bps_mean,
    m.spread_bps_min,
    m.spread_bps_max,
    m.bid_qty_sum / NULLIF(m.book_updates, 0)                          AS bid_qty_mean,
    m.ask_qty_sum / NULLIF(m.book_updates, 0)                          AS ask_qty_mean,
    m.bid_notional_sum / NULLIF(m.book_updates, 0)                     AS bid_notional_mean,
    m.ask_notional_sum / NULLIF(m.book_updates, 0)                     AS ask_notional_mean,
    (m.bid_notional_sum + m.ask_notional_sum) / NULLIF(m.book_updates, 0) AS depth_notional_mean,
    m.imbalance_sum / NULLIF(m.book_updates, 0)                        AS book_imbalance_mean,
    (m.bid_qty_close - m.ask_qty_close) / NULLIF(m.bid_qty_close + m.ask_qty_close, 0) AS book_imbalance_close,
    m.mid_open,
    m.mid_high,
    m.mid_low,
    m.mid_close,
    m.bid_px_close,
    m.ask_px_close,
    m.trade_count,
    m.volume,
    m.notional,
    m.buy_volume,
    m.sell_volume,
    (m.buy_volume - m.sell_volume) / NULLIF(m.volume, 0)               AS flow_imbalance,
    m.notional / NULLIF(m.volume, 0)                                   AS vwap,
    m.open,
    m.high,
    m.low,
    m.close,
    m.last_update_ts,
    extract(epoch FROM least(now(), m.bucket + INTERVAL '{grain}') - m.last_update_ts)::float8 AS freshness_s,
    m.latency_ms_sum / NULLIF(m.book_updates + m.trade_count, 0)       AS latency_ms_mean,
    m.latency_ms_min,
    m.latency_ms_max,
    -- The bucket still filling is measured against the seconds elapsed so far.
    m.book_active_seconds::float8 / greatest(1, least(extract(epoch FROM INTERVAL '{grain}')::float8,
                                                         extract(epoch FROM now() - m.bucket)::float8)) AS book_coverage,
    m.trade_active_seconds::float8 / greatest(1, least(extract(epoch FROM INTERVAL '{grain}')::float8,
                                                          extract(epoch FROM now() - m.bucket)::float8)) AS trade_coverage,
    m.book_updates + m.trade_count                                     AS sample_count,
    -- Quality (appended: existing columns keep their positions). A quiet market changes its top of book
    -- rarely, so "thin" is only a bucket where almost no second had a book update (under 5 %: 3 of 60 s). Gaps and rejections are few, read per
    -- bucket through indexes (feed_gaps_venue_symbol, rejected_messages_venue_symbol, raw_trades_rest).
    q.gaps,
    q.rejected,
    q.backfilled_trades,
    q.open_gaps = 0 AND coalesce(m.book_active_seconds::float8 / greatest(1, least(extract(epoch FROM INTERVAL '{grain}')::float8,
        extract(epoch FROM now() - m.bucket)::float8)), 0) >= 0.05               AS complete
FROM (
    SELECT
        u.bucket, u.venue, u.symbol,
        coalesce(sum(u.updates), 0)                   AS book_updates,
        coalesce(sum(u.book_active_seconds), 0)       AS book_active_seconds,
        sum(u.spread_bps_sum)                         AS spread_bps_sum,
        min(u.spread_bps_min)                         AS spread_bps_min,
        max(u.spread_bps_max)                         AS spread_bps_max,
        sum(u.bid_qty_sum)                            AS bid_qty_sum,
        sum(u.ask_qty_sum)                            AS ask_qty_sum,
        sum(u.bid_notional_sum)                       AS bid_notional_sum,
        sum(u.ask_notional_sum)                       AS ask_notional_sum,
        sum(u.imbalance_sum)                          AS imbalance_sum,
        max(u.mid_open)                               AS mid_open,
        max(u.mid_high)                               AS mid_high,
        min(u.mid_low)                                AS mid_low,
        max(u.mid_close)                              AS mid_close,
        max(u.bid_px_close)                           AS bid_px_close,
        max(u.ask_px_close)                           AS ask_px_close,
        max(u.bid_qty_close)                          AS bid_qty_close,
        max(u.ask_qty_close)                          AS ask_qty_close,
        coalesce(sum(u.trades), 0)                    AS trade_count,
        coalesce(sum(u.trade_active_seconds), 0)      AS trade_active_seconds,
        coalesce(sum(u.volume), 0)                    AS volume,
        coalesce(sum(u.notional), 0)                  AS notional,
        coalesce(sum(u.buy_volume), 0)                AS buy_volume,
        coalesce(sum(u.sell_volume), 0)               AS sell_volume,
        max(u.open)                                   AS open,
        max(u.high)                                   AS high,
        min(u.low)                                    AS low,
        max(u.close)                                  AS close,
        max(u.last_ts)                                AS last_update_ts,
        sum(u.latency_ms_sum)                         AS latency_ms_sum,
        min(u.latency_ms_min)                         AS latency_ms_min,
        max(u.latency_ms_max)                         AS latency_ms_max
    FROM (
        SELECT b.bucket, b.venue, b.symbol, b.updates, b.active_seconds AS book_active_seconds,
               b.spread_bps_sum, b.spread_bps_min, b.spread_bps_max, b.bid_qty_sum, b.ask_qty_sum,
               b.bid_notional_sum, b.ask_notional_sum, b.imbalance_sum, b.mid_open, b.mid_high,
               b.mid_low, b.mid_close, b.bid_px_close, b.ask_px_close, b.bid_qty_close, b.ask_qty_close,
               NULL::bigint AS trades, NULL::bigint AS trade_active_seconds, NULL::float8 AS volume,
               NULL::float8 AS notional, NULL::float8 AS buy_volume, NULL::float8 AS sell_volume,
               NULL::float8 AS open, NULL::float8 AS high, NULL::float8 AS low, NULL::float8 AS close,
               b.last_ts, b.latency_ms_sum, b.latency_ms_min, b.latency_ms_max
        FROM ops.book_{grain} b
        UNION ALL
        SELECT t.bucket, t.venue, t.symbol, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL,
               t.trades, t.active_seconds, t.volume,
               t.notional, t.buy_volume, t.sell_volume,
               t.open, t.high, t.low, t.close,
               t.last_ts, t.latency_ms_sum, t.latency_ms_min, t.latency_ms_max
        FROM ops.trades_{grain} t
    ) u
    GROUP BY u.bucket, u.venue, u.symbol
) m
LEFT JOIN ops.instruments i ON i.venue = m.venue AND i.symbol = m.symbol
CROSS JOIN LATERAL (
    SELECT
        (SELECT count(*) FROM ops.feed_gaps g
         WHERE g.venue = m.venue AND g.symbol = m.symbol AND g.stream <> 'depth'
           AND coalesce(g.from_ts, g.detected_at) < m.bucket + INTERVAL '{grain}'
           AND coalesce(g.to_ts, g.detected_at) >= m.bucket)                       AS gaps,
        (SELECT count(*) FROM ops.feed_gaps g
         WHERE g.venue = m.venue AND g.symbol = m.symbol AND g.resolved_at IS NULL AND g.stream <> 'depth'
           AND coalesce(g.from_ts, g.detected_at) < m.bucket + INTERVAL '{grain}'
           AND coalesce(g.to_ts, g.detected_at) >= m.bucket)                       AS open_gaps,
        (SELECT count(*) FROM ops.rejected_messages r
         WHERE r.venue = m.venue AND r.symbol = m.symbol
           AND r.recv_ts >= m.bucket AND r.recv_ts < m.bucket + INTERVAL '{grain}') AS rejected,
        (SELECT count(*) FROM ops.raw_trades t
         WHERE t.venue = m.venue AND t.symbol = m.symbol AND t.source = 'rest'
           AND t.ts >= m.bucket AND t.ts < m.bucket + INTERVAL '{grain}')           AS backfilled_trades
) q;

COMMENT ON VIEW ops.features_{grain} IS
    'Market health per {grain} bucket, venue and symbol: spread bps, L1 depth, imbalance, trade flow, OHLC/VWAP, freshness, latency, coverage';

COMMENT ON COLUMN ops.features_{grain}.bucket IS 'bucket start, venue time; the bucket still filling is included (real-time)';
COMMENT ON COLUMN ops.features_{grain}.venue IS 'binance, hyperliquid, bybit, okx';
COMMENT ON COLUMN ops.features_{grain}.symbol IS 'venue symbol';
COMMENT ON COLUMN ops.features_{grain}.asset IS 'base asset from ops.instruments (join key across venues); NULL if the symbol has no instruments row';
COMMENT ON COLUMN ops.features_{grain}.book_updates IS 'L1 book updates in the bucket; 0 = no book data (trades only)';
COMMENT ON COLUMN ops.features_{grain}.spread_bps_mean IS 'mean spread over the updates, bps: (ask - bid) / mid x 1e4; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.spread_bps_min IS 'narrowest spread, bps; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.spread_bps_max IS 'widest spread, bps; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.bid_qty_mean IS 'mean best-bid size, base units; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.ask_qty_mean IS 'mean best-ask size, base units; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.bid_notional_mean IS 'mean best-bid notional bid_px x bid_qty, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.ask_notional_mean IS 'mean best-ask notional ask_px x ask_qty, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.depth_notional_mean IS 'mean L1 depth, bid + ask notional at the top of book, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.book_imbalance_mean IS 'mean L1 imbalance (bid_qty - ask_qty) / (bid_qty + ask_qty), -1 (all ask) .. 1 (all bid); NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.book_imbalance_close IS 'L1 imbalance of the last update, -1 .. 1; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.mid_open IS 'first mid (bid + ask) / 2, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.mid_high IS 'highest mid, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.mid_low IS 'lowest mid, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.mid_close IS 'last mid, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.bid_px_close IS 'last best bid, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.ask_px_close IS 'last best ask, quote currency; NULL with no book update';
COMMENT ON COLUMN ops.features_{grain}.trade_count IS 'trade prints in the bucket; 0 with book updates = quiet market';
COMMENT ON COLUMN ops.features_{grain}.volume IS 'traded size, base units; 0 with no trade';
COMMENT ON COLUMN ops.features_{grain}.notional IS 'traded notional price x qty, quote currency; 0 with no trade';
COMMENT ON COLUMN ops.features_{grain}.buy_volume IS 'size of buyer-initiated (aggressor buy) trades, base units; 0 with none';
COMMENT ON COLUMN ops.features_{grain}.sell_volume IS 'size of seller-initiated trades, base units; 0 with none';
COMMENT ON COLUMN ops.features_{grain}.flow_imbalance IS '(buy_volume - sell_volume) / volume, -1 .. 1; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.vwap IS 'volume-weighted average trade price notional / volume, quote currency; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.open IS 'first trade price, quote currency; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.high IS 'highest trade price, quote currency; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.low IS 'lowest trade price, quote currency; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.close IS 'last trade price, quote currency; NULL with no trade';
COMMENT ON COLUMN ops.features_{grain}.last_update_ts IS 'venue time of the newest book or trade update in the bucket';
COMMENT ON COLUMN ops.features_{grain}.freshness_s IS 'seconds from last_update_ts to the end of the bucket (to now for the bucket still filling); negative if the venue clock is ahead';
COMMENT ON COLUMN ops.features_{grain}.latency_ms_mean IS 'mean latency recv_ts - ts over book updates and trades, ms (receive time vs venue time; negative: venue clock ahead of ours)';
COMMENT ON COLUMN ops.features_{grain}.latency_ms_min IS 'lowest latency recv_ts - ts, ms';
COMMENT ON COLUMN ops.features_{grain}.latency_ms_max IS 'highest latency recv_ts - ts, ms';
COMMENT ON COLUMN ops.features_{grain}.book_coverage IS 'share of the bucket''s seconds (elapsed so far, for the bucket still filling) with a book update, 0 .. 1';
COMMENT ON COLUMN ops.features_{grain}.trade_coverage IS 'share of the bucket''s seconds (elapsed so far) with a trade, 0 .. 1';
COMMENT ON COLUMN ops.features_{grain}.sample_count IS 'book_updates + trade_count; no row (or 0) = no data, as opposed to a quiet market';
COMMENT ON COLUMN ops.features_{grain}.gaps IS
    'trade/L1 feed gaps (ops.feed_gaps) overlapping the bucket, open or resolved; a gap without times counts at '
    'detected_at; depth-book breaks (stream ''depth'') are not counted: they are about ops.raw_book_depth samples';
COMMENT ON COLUMN ops.features_{grain}.rejected IS
    'messages of this market quarantined in ops.rejected_messages during the bucket (by receive time)';
COMMENT ON COLUMN ops.features_{grain}.backfilled_trades IS
    'trades of the bucket recovered from the venue''s REST after a gap (ops.raw_trades.source = ''rest'')';
COMMENT ON COLUMN ops.features_{grain}.complete IS
    'the bucket can be trusted: no open trade/L1 gap overlaps it and book_coverage (seconds with a book update) >= 0.05; '
    'market rules do not fire on an incomplete minute unless they set fire_on_incomplete';
