"""Risk score metrics computed from ops.features_1m: divergence on aligned minutes, robust spread z;
and the derivatives components (funding, basis, liquidations) from ops.derivs_features_1m."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta

import pytest

from jobs.metric_names import STORED_METRICS
from jobs.rules import SYMBOL_METRICS, load_rules
from jobs.scoring import MAD_TO_SIGMA, score_minutes
from jobs.sqlfiles import sql
from tests.support.depth import Depth, write_depth
from tests.support.derivs import write_derivs
from tests.support.fixtures import DERIVS_COLUMNS, T0
from tests.support.market import INSTRUMENTS, Quote, write_market
from tower.cagg_refresh import refresh_feature_caggs

M = timedelta(minutes=1)
CFG = load_rules().scoring


def hl_btc_drifts(venue, symbol, m, q: Quote):
    if (venue, symbol) != ("hyperliquid", "BTC"):
        return q
    if m == 7:
        return None  # no Hyperliquid data at all this minute
    return Quote(mid=50_000.0 + 10 * m, spread_bps=q.spread_bps)


async def test_divergence_is_computed_on_aligned_minutes_with_fresh_quotes_only(conn):
    await write_market(conn, 10, hl_btc_drifts)
    # Minute 6: Hyperliquid stops quoting at :30, so its last quote is 30+ s old when the minute closes.
    await conn.execute(
        "DELETE FROM ops.raw_book_l1 WHERE venue = 'hyperliquid' AND symbol = 'BTC' AND ts >= $1 AND ts < $2",
        T0 + 6 * M + timedelta(seconds=30),
        T0 + 7 * M,
    )
    await refresh_feature_caggs(conn, T0, T0 + 10 * M)
    await score_minutes(conn, T0, T0 + 10 * M, CFG)

    rows = await conn.fetch(
        "SELECT bucket, venue, divergence_bps FROM ops.risk_scores WHERE asset = 'BTC' ORDER BY bucket, venue"
    )
    div = {((r["bucket"] - T0) // M, r["venue"]): r["divergence_bps"] for r in rows}
    for m in (0, 1, 2, 3, 4, 5, 8, 9):
        hl = 50_000.0 + 10 * m  # same-minute mids: a lag would be off by 10 per minute
        assert div[(m, "hyperliquid")] == pytest.approx((hl / 50_000.0 - 1) * 1e4, abs=1e-4)
        assert div[(m, "binance")] == pytest.approx((50_000.0 / hl - 1) * 1e4, abs=1e-4)
    for m in (6, 7):  # stale or missing quote on one side: no divergence
        assert div[(m, "hyperliquid")] is None and div[(m, "binance")] is None
    eth = await conn.fetch("SELECT divergence_bps FROM ops.risk_scores WHERE asset = 'ETH'")
    assert len(eth) == 20 and all(r["divergence_bps"] == pytest.approx(0.0) for r in eth)


async def test_spread_z_is_a_robust_z_score_against_the_trailing_baseline(conn):
    def widen_at_40(venue, symbol, m, q):
        return Quote(q.mid, 5.0) if m == 40 else q

    await write_market(conn, 41, widen_at_40)
    await refresh_feature_caggs(conn, T0, T0 + 41 * M)
    scores = {
        s.bucket: s
        for s in await score_minutes(conn, T0 + 5 * M, T0 + 41 * M, CFG)
        if (s.venue, s.symbol) == ("binance", "SOLUSDT")
    }
    spreads = {
        r["bucket"]: r["spread_bps_mean"]
        for r in await conn.fetch(
            "SELECT bucket, spread_bps_mean FROM ops.features_1m WHERE venue = 'binance' AND symbol = 'SOLUSDT'"
        )
    }

    for m in (20, 40):
        history = [spreads[T0 + k * M] for k in range(max(0, m - CFG.baseline_minutes), m)]
        median = statistics.median(history)
        mad = statistics.median(abs(x - median) for x in history)
        expected = (spreads[T0 + m * M] - median) / max(MAD_TO_SIGMA * mad, CFG.spread_scale_floor_bps)
        assert scores[T0 + m * M].stored["spread_z"] == pytest.approx(expected, abs=1e-5)
    assert scores[T0 + 40 * M].stored["spread_z"] > 8
    # Fewer than min_baseline_minutes of history: no z-score rather than a noisy one.
    assert scores[T0 + 5 * M].stored["spread_z"] is None
    assert scores[T0 + 5 * M].stored["freshness_s"] == pytest.approx(2.0)


async def test_a_symbol_that_never_quoted_is_scored_stale(conn):
    await write_market(conn, 3, lambda v, s, m, q: None if (v, s) == ("binance", "SOLUSDT") else q)
    await refresh_feature_caggs(conn, T0, T0 + 3 * M)
    await score_minutes(conn, T0, T0 + 3 * M, CFG)
    row = await conn.fetchrow(
        "SELECT score, top_component, freshness_s, coverage FROM ops.risk_scores "
        "WHERE venue = 'binance' AND symbol = 'SOLUSDT' AND bucket = $1",
        T0 + 2 * M,
    )
    assert row["top_component"] == "stale" and row["score"] == 100 and row["coverage"] == 0
    # "At least the look-back" is all that is known: reported as a lower bound, never as fresh.
    assert row["freshness_s"] == (CFG.baseline_minutes + 1) * 60


async def test_live_minutes_scored_from_history_match_a_from_scratch_computation(conn):
    """A live pass reads its baselines from ops.risk_scores; that must change no value."""
    cfg = CFG.model_copy(update={"baseline_minutes": 10, "min_baseline_minutes": 5, "vol_window_minutes": 5})

    def eventful(venue, symbol, m, q):
        if venue == "binance" and 18 <= m < 21:
            return None  # feed gap: freshness carried in history
        if symbol in ("BTCUSDT", "BTC") and m >= 12:
            return Quote(q.mid * (1 + 0.001 * (m % 4)), q.spread_bps * (1 + m % 3), q.qty / (1 + m % 2))
        return q

    def books(venue, symbol, m):
        if venue == "binance" and 18 <= m < 21:
            return None  # the depth feed down with the rest
        return Depth(1e6 * (1 + (m % 5) / 4) * (0.2 if symbol in ("BTCUSDT", "BTC") and m >= 24 else 1), 1 + m % 3)

    await write_market(conn, 30, eventful)
    await write_depth(conn, INSTRUMENTS, 30, books)
    await refresh_feature_caggs(conn, T0, T0 + 30 * M)
    for m in range(30):  # one minute at a time, like the service
        await score_minutes(conn, T0 + m * M, T0 + (m + 1) * M, cfg)

    from jobs.scoring import fetch_metric_rows, history_boundary, score_row

    assert await history_boundary(conn, T0 + 20 * M, cfg) == T0 + 20 * M  # minute 20 read its baseline history
    assert await history_boundary(conn, T0 + 5 * M, cfg) == T0 - 5 * M  # not enough history: raw features
    fresh = {
        (s.bucket, s.venue, s.symbol): s
        for s in (score_row(r, cfg) for r in await fetch_metric_rows(conn, T0, T0 + 30 * M, cfg))
    }
    stored = await conn.fetch("SELECT * FROM ops.risk_scores ORDER BY bucket, venue, symbol")
    assert len(stored) == len(fresh) == 30 * 6
    for row in stored:
        expected = fresh[(row["bucket"], row["venue"], row["symbol"])]
        assert row["score"] == pytest.approx(expected.score, abs=1e-9)
        for key, value in expected.stored.items():
            assert row[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
    gap = await conn.fetchrow(
        "SELECT freshness_s FROM ops.risk_scores WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND bucket = $1",
        T0 + 20 * M,
    )
    assert gap["freshness_s"] == 182.0  # last update 17:58, minute 20 ends 21:00
    # The liquidity baselines were read from history too, and the BTC drain is in it.
    assert any(r["liquidity_drop_pct"] and r["liquidity_drop_pct"] > 50 for r in stored if r["bucket"] >= T0 + 24 * M)


def linear_points(name: str, value: float) -> float:
    """The documented mapping, written out independently: 0 at low, 100 at high, linear between."""
    comp = CFG.components[name]
    return 100 * min(1.0, max(0.0, (value - comp.low) / (comp.high - comp.low)))


def derivs_scenario(venue, symbol, m):
    if venue == "hyperliquid" and symbol in ("SOL", "ETH"):
        return None  # no derivs feed for these markets
    if (venue, symbol) == ("binance", "BTCUSDT"):
        return {1: (57.5, 27.5), 2: None}.get(m, (1.0, 1.0))  # minute 2: the derivs feed missed a minute
    if (venue, symbol) == ("binance", "ETHUSDT") and m == 1:
        return -250.0, -1.0  # mark far below the index; funding neutral
    if (venue, symbol) == ("hyperliquid", "BTC") and m == 1:
        return 2.0, -27.5  # paid hourly: -3.4375 bps an hour
    return 1.0, 1.0


DERIVS_LIQUIDATIONS = [
    ("binance", "BTCUSDT", 1, "sell", 3_000_000.0),
    ("binance", "BTCUSDT", 1, "buy", 812_500.0),
    ("binance", "ETHUSDT", 0, "sell", 100_000.0),  # below `low`: no points
    ("hyperliquid", "ETH", 2, "sell", 12_000_000.0),  # liquidations without any mark/funding data
]


async def score_derivs_scenario(conn) -> dict:
    await write_market(conn, 3)
    await write_derivs(conn, 3, derivs_scenario, DERIVS_LIQUIDATIONS)
    # Hyperliquid ETH, minute 1: mark and index on separate channels (as OKX and Bybit send them), so no
    # message has both; the basis is the closing mark vs the closing index: 3069 / 3000 = 230 bps.
    t = T0 + M
    await conn.copy_records_to_table(
        "raw_derivs",
        schema_name="ops",
        columns=DERIVS_COLUMNS,
        records=[
            (
                "hyperliquid",
                "ETH",
                t + timedelta(seconds=s),
                t + timedelta(seconds=s),
                mark,
                index,
                None,
                None,
                None,
                None,
            )
            for s, mark, index in ((1, 3010.0, None), (2, None, 2990.0), (50, 3069.0, None), (51, None, 3000.0))
        ],
    )
    await refresh_feature_caggs(conn, T0, T0 + 3 * M)
    return {((s.bucket - T0) // M, s.venue, s.symbol): s for s in await score_minutes(conn, T0, T0 + 3 * M, CFG)}


async def test_funding_basis_and_liquidations_score_their_points_and_missing_derivs_score_none(conn):
    scores = await score_derivs_scenario(conn)

    def comp(m, venue, symbol):
        return scores[(m, venue, symbol)].components

    # Binance BTC, minute 1: each new component half to three quarters of the way from low to high.
    btc = comp(1, "binance", "BTCUSDT")
    assert btc["basis"]["value"] == pytest.approx(57.5, abs=1e-6)
    assert btc["basis"]["points"] == pytest.approx(linear_points("basis", 57.5), abs=1e-3) == pytest.approx(50)
    assert btc["funding"]["value"] == pytest.approx(27.5, abs=1e-6)
    assert btc["funding"]["points"] == pytest.approx(linear_points("funding", 27.5), abs=1e-3) == pytest.approx(50)
    assert btc["liquidations"]["value"] == pytest.approx(3_812_500, abs=1e-3)
    assert btc["liquidations"]["points"] == pytest.approx(75, abs=1e-3)
    # The quiet market adds nothing else, so the score is the three combined with their weights.
    assert all(v["points"] == 0 for k, v in btc.items() if k not in ("basis", "funding", "liquidations"))
    w = {k: CFG.components[k].weight for k in ("funding", "basis", "liquidations")}
    expected = 100 * (1 - (1 - w["funding"] * 0.5) * (1 - w["basis"] * 0.5) * (1 - w["liquidations"] * 0.75))
    s = scores[(1, "binance", "BTCUSDT")]
    assert s.score == pytest.approx(expected, abs=1e-3) and s.top_component == "liquidations"
    # Signed metrics are stored; the components score their size.
    assert (s.stored["basis_bps"], s.stored["funding_8h_bps"]) == (pytest.approx(57.5), pytest.approx(27.5))

    # A mark 250 bps under the index is past `high` whichever the sign; neutral funding scores nothing.
    eth = comp(1, "binance", "ETHUSDT")
    assert (eth["basis"]["value"], eth["basis"]["points"]) == (pytest.approx(250.0, abs=1e-6), 100)
    assert scores[(1, "binance", "ETHUSDT")].stored["funding_8h_bps"] == pytest.approx(-1.0)
    assert eth["funding"]["points"] == 0 and eth["liquidations"]["points"] == 0
    assert scores[(0, "binance", "ETHUSDT")].components["liquidations"] == {"value": 100_000.0, "points": 0.0}
    # Mark and index from separate messages: the basis is close vs close; no funding in them, no points.
    split = scores[(1, "hyperliquid", "ETH")]
    assert split.stored["basis_bps"] == pytest.approx(230.0) and split.components["basis"]["points"] == 100
    assert split.stored["funding_8h_bps"] is None and split.components["funding"]["points"] == 0

    # Hyperliquid pays hourly: normalized to 8 h it scores like the same funding on Binance.
    hl = comp(1, "hyperliquid", "BTC")
    assert hl["funding"]["value"] == pytest.approx(27.5, abs=1e-6) and hl["funding"]["points"] == pytest.approx(50)
    assert scores[(1, "hyperliquid", "BTC")].stored["funding_8h_bps"] == pytest.approx(-27.5)

    # No derivs data (a market without a derivs feed, or a minute the feed missed): NULL, 0 points, never 100.
    for key in [(m, "hyperliquid", "SOL") for m in range(3)] + [(2, "binance", "BTCUSDT")]:
        c = scores[key].components
        assert {k: c[k] for k in ("funding", "basis", "liquidations")} == {
            k: {"value": None, "points": 0.0} for k in ("funding", "basis", "liquidations")
        }, key
        assert scores[key].score == 0 and scores[key].top_component is None
        assert all(scores[key].stored[k] is None for k in ("funding_8h_bps", "basis_bps", "liq_notional"))
    # Derivs data without liquidations: 0 notional, 0 points.
    assert scores[(0, "binance", "BTCUSDT")].components["liquidations"] == {"value": 0.0, "points": 0.0}
    # Liquidations with no mark/funding data: those two score nothing, the burst scores in full.
    burst = comp(2, "hyperliquid", "ETH")
    assert burst["liquidations"] == {"value": 12_000_000.0, "points": 100.0}
    assert burst["funding"] == burst["basis"] == {"value": None, "points": 0.0}
    assert scores[(2, "hyperliquid", "ETH")].score == pytest.approx(100 * CFG.components["liquidations"].weight)

    # What was stored is what was scored.
    row = await conn.fetchrow(
        "SELECT funding_8h_bps, basis_bps, liq_notional, components FROM ops.risk_scores "
        "WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND bucket = $1",
        T0 + M,
    )
    assert (row["funding_8h_bps"], row["basis_bps"], row["liq_notional"]) == (
        pytest.approx(27.5),
        pytest.approx(57.5),
        pytest.approx(3_812_500),
    )
    assert json.loads(row["components"])["liquidations"]["points"] == pytest.approx(75, abs=1e-3)


async def test_stored_metrics_are_risk_score_columns_and_the_sql_built_from_them_runs(conn):
    """STORED_METRICS gives the column lists of upsert_score.sql and minute_scores.sql: every name must
    be a column of the migrated table, and the SQL rendered from it must write, skip and read back."""
    types = {
        r["column_name"]: r["data_type"]
        for r in await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ops' AND table_name = 'risk_scores'"
        )
    }
    assert [m for m in (*STORED_METRICS, *SYMBOL_METRICS) if m not in types] == []
    # A distinct value per column, of its type: a list shifted against another reads back wrong values.
    values = {m: T0 - i * M if types[m].startswith("timestamp") else float(i) for i, m in enumerate(STORED_METRICS)}

    async def upsert(**changed) -> None:
        row = {**values, **changed}
        await conn.execute(
            sql("upsert_score"),
            T0,
            "binance",
            "BTCUSDT",
            "BTC",
            12.5,
            "spread",
            "{}",
            *[row[m] for m in STORED_METRICS],
        )

    async def stored() -> dict:
        return dict(await conn.fetchrow("SELECT * FROM ops.risk_scores WHERE bucket = $1", T0))

    await upsert()
    first = await stored()
    assert {m: first[m] for m in STORED_METRICS} == values
    watched = dict(await conn.fetchrow(sql("minute_scores"), T0))
    assert watched == {"venue": "binance", "symbol": "BTCUSDT", **{m: first[m] for m in SYMBOL_METRICS}}

    await upsert()  # identical re-score: nothing written
    assert (await stored())["computed_at"] == first["computed_at"]
    for m in STORED_METRICS:  # each metric is in the SET and the comparison
        new = values[m] + (M if types[m].startswith("timestamp") else 0.5)
        await upsert(**{m: new})
        after = await stored()
        assert after[m] == new and after["computed_at"] > first["computed_at"], m
        await upsert()
