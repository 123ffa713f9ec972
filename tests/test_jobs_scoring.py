"""Risk score metrics computed from ops.features_1m: divergence on aligned minutes, robust spread z."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from jobs.rules import load_rules
from jobs.scoring import MAD_TO_SIGMA, score_minutes
from tests.fixtures import T0
from tests.market import Quote, write_market
from tower import features

M = timedelta(minutes=1)
CFG = load_rules().scoring


def hl_btc_drifts(venue, symbol, m, q: Quote):
    if (venue, symbol) != ("hyperliquid", "BTC"):
        return q
    if m == 7:
        return None                                   # no Hyperliquid data at all this minute
    return Quote(mid=50_000.0 + 10 * m, spread_bps=q.spread_bps)


async def test_divergence_is_computed_on_aligned_minutes_with_fresh_quotes_only(conn):
    await write_market(conn, 10, hl_btc_drifts)
    # Minute 6: Hyperliquid stops quoting at :30, so its last quote is 30+ s old when the minute closes.
    await conn.execute("DELETE FROM ops.raw_book_l1 WHERE venue = 'hyperliquid' AND symbol = 'BTC' "
                       "AND ts >= $1 AND ts < $2", T0 + 6 * M + timedelta(seconds=30), T0 + 7 * M)
    await features.refresh(conn, T0, T0 + 10 * M)
    await score_minutes(conn, T0, T0 + 10 * M, CFG)

    rows = await conn.fetch("SELECT bucket, venue, divergence_bps FROM ops.risk_scores WHERE asset = 'BTC' "
                            "ORDER BY bucket, venue")
    div = {((r["bucket"] - T0) // M, r["venue"]): r["divergence_bps"] for r in rows}
    for m in (0, 1, 2, 3, 4, 5, 8, 9):
        hl = 50_000.0 + 10 * m                        # same-minute mids: a lag would be off by 10 per minute
        assert div[(m, "hyperliquid")] == pytest.approx((hl / 50_000.0 - 1) * 1e4, abs=1e-4)
        assert div[(m, "binance")] == pytest.approx((50_000.0 / hl - 1) * 1e4, abs=1e-4)
    for m in (6, 7):                                  # stale or missing quote on one side: no divergence
        assert div[(m, "hyperliquid")] is None and div[(m, "binance")] is None
    eth = await conn.fetch("SELECT divergence_bps FROM ops.risk_scores WHERE asset = 'ETH'")
    assert len(eth) == 20 and all(r["divergence_bps"] == pytest.approx(0.0) for r in eth)


async def test_spread_z_is_a_robust_z_score_against_the_trailing_baseline(conn):
    def widen_at_40(venue, symbol, m, q):
        return Quote(q.mid, 5.0) if m == 40 else q

    await write_market(conn, 41, widen_at_40)
    await features.refresh(conn, T0, T0 + 41 * M)
    scores = {s.bucket: s for s in await score_minutes(conn, T0 + 5 * M, T0 + 41 * M, CFG)
              if (s.venue, s.symbol) == ("binance", "SOLUSDT")}
    spreads = {r["bucket"]: r["spread_bps_mean"] for r in await conn.fetch(
        "SELECT bucket, spread_bps_mean FROM ops.features_1m WHERE venue = 'binance' AND symbol = 'SOLUSDT'")}

    for m in (20, 40):
        history = [spreads[T0 + k * M] for k in range(max(0, m - CFG.baseline_minutes), m)]
        median = statistics.median(history)
        mad = statistics.median(abs(x - median) for x in history)
        expected = (spreads[T0 + m * M] - median) / max(MAD_TO_SIGMA * mad, CFG.spread_scale_floor_bps)
        assert scores[T0 + m * M].metrics["spread_z"] == pytest.approx(expected, abs=1e-5)
    assert scores[T0 + 40 * M].metrics["spread_z"] > 8
    # Fewer than min_baseline_minutes of history: no z-score rather than a noisy one.
    assert scores[T0 + 5 * M].metrics["spread_z"] is None
    assert scores[T0 + 5 * M].metrics["freshness_s"] == pytest.approx(2.0)


async def test_a_symbol_that_never_quoted_is_scored_stale(conn):
    await write_market(conn, 3, lambda v, s, m, q: None if (v, s) == ("binance", "SOLUSDT") else q)
    await features.refresh(conn, T0, T0 + 3 * M)
    await score_minutes(conn, T0, T0 + 3 * M, CFG)
    row = await conn.fetchrow("SELECT score, top_component, freshness_s, coverage FROM ops.risk_scores "
                              "WHERE venue = 'binance' AND symbol = 'SOLUSDT' AND bucket = $1", T0 + 2 * M)
    assert row["top_component"] == "stale" and row["score"] == 100 and row["coverage"] == 0
    # "At least the look-back" is all that is known: reported as a lower bound, never as fresh.
    assert row["freshness_s"] == (CFG.baseline_minutes + 1) * 60
