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


async def test_live_minutes_scored_from_history_match_a_from_scratch_computation(conn):
    """A live pass reads its baselines from ops.risk_scores; that must change no value."""
    cfg = CFG.model_copy(update={"baseline_minutes": 10, "min_baseline_minutes": 5, "vol_window_minutes": 5})

    def eventful(venue, symbol, m, q):
        if venue == "binance" and 18 <= m < 21:
            return None                                            # feed gap: freshness carried in history
        if symbol in ("BTCUSDT", "BTC") and m >= 12:
            return Quote(q.mid * (1 + 0.001 * (m % 4)), q.spread_bps * (1 + m % 3), q.qty / (1 + m % 2))
        return q

    await write_market(conn, 30, eventful)
    await features.refresh(conn, T0, T0 + 30 * M)
    for m in range(30):                                            # one minute at a time, like the service
        await score_minutes(conn, T0 + m * M, T0 + (m + 1) * M, cfg)

    from jobs.scoring import history_boundary, metrics, score_row
    assert await history_boundary(conn, T0 + 20 * M, cfg) == T0 + 20 * M   # minute 20 read its baseline history
    assert await history_boundary(conn, T0 + 5 * M, cfg) == T0 - 5 * M     # not enough history: raw features
    fresh = {(s.bucket, s.venue, s.symbol): s for s in
             (score_row(r, cfg) for r in await metrics(conn, T0, T0 + 30 * M, cfg))}
    stored = await conn.fetch("SELECT * FROM ops.risk_scores ORDER BY bucket, venue, symbol")
    assert len(stored) == len(fresh) == 30 * 6
    for row in stored:
        expected = fresh[(row["bucket"], row["venue"], row["symbol"])]
        assert row["score"] == pytest.approx(expected.score, abs=1e-9)
        for key, value in expected.metrics.items():
            assert row[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
    gap = await conn.fetchrow("SELECT freshness_s FROM ops.risk_scores WHERE venue = 'binance' "
                              "AND symbol = 'BTCUSDT' AND bucket = $1", T0 + 20 * M)
    assert gap["freshness_s"] == 182.0                             # last update 17:58, minute 20 ends 21:00
