-- One risk score row; an identical re-score leaves the row (and its computed_at) untouched.
INSERT INTO ops.risk_scores AS r
    (bucket, venue, symbol, asset, score, top_component, components, spread_bps, spread_z,
     depth_notional, depth_drop_pct, book_imbalance, flow_imbalance, realized_vol_bps, jump_bps,
     freshness_s, coverage, latency_ms, divergence_bps, mid, last_update_ts,
     funding_8h_bps, basis_bps, liq_notional)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
        $22, $23, $24)
ON CONFLICT (venue, symbol, bucket) DO UPDATE SET
    asset = EXCLUDED.asset, score = EXCLUDED.score, top_component = EXCLUDED.top_component,
    components = EXCLUDED.components, spread_bps = EXCLUDED.spread_bps, spread_z = EXCLUDED.spread_z,
    depth_notional = EXCLUDED.depth_notional, depth_drop_pct = EXCLUDED.depth_drop_pct,
    book_imbalance = EXCLUDED.book_imbalance, flow_imbalance = EXCLUDED.flow_imbalance,
    realized_vol_bps = EXCLUDED.realized_vol_bps, jump_bps = EXCLUDED.jump_bps,
    freshness_s = EXCLUDED.freshness_s, coverage = EXCLUDED.coverage, latency_ms = EXCLUDED.latency_ms,
    divergence_bps = EXCLUDED.divergence_bps, mid = EXCLUDED.mid,
    last_update_ts = EXCLUDED.last_update_ts, funding_8h_bps = EXCLUDED.funding_8h_bps,
    basis_bps = EXCLUDED.basis_bps, liq_notional = EXCLUDED.liq_notional, computed_at = now()
WHERE (r.score, r.top_component, r.components, r.spread_bps, r.spread_z, r.depth_notional, r.depth_drop_pct,
       r.book_imbalance, r.flow_imbalance, r.realized_vol_bps, r.jump_bps, r.freshness_s, r.coverage,
       r.latency_ms, r.divergence_bps, r.mid, r.last_update_ts, r.funding_8h_bps, r.basis_bps, r.liq_notional)
      IS DISTINCT FROM
      (EXCLUDED.score, EXCLUDED.top_component, EXCLUDED.components, EXCLUDED.spread_bps, EXCLUDED.spread_z,
       EXCLUDED.depth_notional, EXCLUDED.depth_drop_pct, EXCLUDED.book_imbalance, EXCLUDED.flow_imbalance,
       EXCLUDED.realized_vol_bps, EXCLUDED.jump_bps, EXCLUDED.freshness_s, EXCLUDED.coverage,
       EXCLUDED.latency_ms, EXCLUDED.divergence_bps, EXCLUDED.mid, EXCLUDED.last_update_ts,
       EXCLUDED.funding_8h_bps, EXCLUDED.basis_bps, EXCLUDED.liq_notional)
