"""The metrics a risk score stores: one tuple, in column order of ops.risk_scores.

It drives the Score values (jobs/scoring.py), the metrics a symbol rule may watch (jobs/rules.py)
and the column lists of jobs/sql/minute_scores.sql and jobs/sql/upsert_score.sql (jobs/sqlfiles.py).
No imports: every other jobs module may import it without a cycle.
"""

from __future__ import annotations

STORED_METRICS = (
    "spread_bps",
    "spread_z",
    "depth_notional",
    "depth_drop_pct",
    "book_imbalance",
    "flow_imbalance",
    "realized_vol_bps",
    "jump_bps",
    "freshness_s",
    "coverage",
    "latency_ms",
    "divergence_bps",
    "mid",
    "last_update_ts",
    "funding_8h_bps",
    "basis_bps",
    "liq_notional",
    "depth_25bps",
    "depth_25bps_drop_pct",
    "slip_bps",
    "liquidity_drop_pct",
)
