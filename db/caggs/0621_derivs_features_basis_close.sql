-- ops.derivs_features_1m, revised for venues that send mark and index on separate channels (OKX
-- mark-price / index-tickers, Bybit ticker deltas): no single message carries both, so the minute's
-- basis falls back to its closing mark against its closing index. basis_bps_close is new (at the end,
-- as CREATE OR REPLACE VIEW requires).
CREATE OR REPLACE VIEW ops.derivs_features_1m AS
SELECT
    coalesce(d.bucket, l.bucket)                                                    AS bucket,
    coalesce(d.venue, l.venue)                                                      AS venue,
    coalesce(d.symbol, l.symbol)                                                    AS symbol,
    i.asset,
    d.mark_close,
    d.index_close,
    coalesce(d.basis_bps_sum / NULLIF(d.basis_samples, 0),
             (d.mark_close - d.index_close) / NULLIF(d.index_close, 0) * 1e4)          AS basis_bps_mean,
    d.basis_bps_min,
    d.basis_bps_max,
    d.funding_rate,
    d.funding_interval,
    d.funding_rate * 28800 / NULLIF(extract(epoch FROM d.funding_interval)::float8, 0)      AS funding_8h,
    d.funding_rate * 31536000 / NULLIF(extract(epoch FROM d.funding_interval)::float8, 0)  AS funding_annualized,
    d.next_funding_ts,
    d.oi_open,
    d.oi_close,
    d.oi_close - d.oi_open                                                          AS oi_change,
    (d.oi_close - d.oi_open) / NULLIF(d.oi_open, 0)                                 AS oi_change_pct,
    d.oi_close * d.mark_close                                                       AS oi_notional,
    coalesce(l.liquidations, 0)                                                     AS liquidations,
    coalesce(l.sell_notional, 0)                                                    AS liq_sell_notional,
    coalesce(l.buy_notional, 0)                                                     AS liq_buy_notional,
    coalesce(l.sell_notional, 0) + coalesce(l.buy_notional, 0)                      AS liq_notional,
    l.largest_notional                                                              AS liq_largest_notional,
    coalesce(d.updates, 0)                                                          AS derivs_updates,
    (d.mark_close - d.index_close) / NULLIF(d.index_close, 0) * 1e4                 AS basis_bps_close
FROM ops.derivs_1m d
FULL JOIN ops.liquidations_1m l ON l.bucket = d.bucket AND l.venue = d.venue AND l.symbol = d.symbol
LEFT JOIN ops.instruments i ON i.venue = coalesce(d.venue, l.venue) AND i.symbol = coalesce(d.symbol, l.symbol);
