-- The scores of one minute with the metrics rules can watch.
SELECT venue, symbol, score, spread_bps, spread_z, depth_drop_pct, book_imbalance, flow_imbalance,
       realized_vol_bps, jump_bps, freshness_s, coverage, latency_ms, divergence_bps,
       funding_8h_bps, basis_bps, liq_notional
FROM ops.risk_scores
WHERE bucket = $1
ORDER BY venue, symbol
