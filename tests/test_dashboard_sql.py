"""Every dashboard card's SQL, run as Metabase would run it (tower_readonly, template tags substituted),
against a realistic data set on the real TimescaleDB, under whichever license the server has."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg
import pytest

from metabase import spec
from tests.support import dashboard_data
from tests.support.card_checks import CardCheckError, check_card, run_as_readonly

M = timedelta(minutes=1)
DASHBOARDS = spec.load_all()
CARDS = [(d, c) for d in DASHBOARDS for c in d.cards]


@pytest.fixture(scope="module")
def loaded_dsn(server_dsn, template_db):
    """One database loaded with the data set for the whole module (cards only read)."""
    yield from dashboard_data.loaded_clone(server_dsn, template_db)


@pytest.fixture
async def data(loaded_dsn):
    dsn, now = loaded_dsn
    conn = await asyncpg.connect(dsn)
    yield conn, now
    await conn.close()


def _card(dashboard_key: str, card_key: str):
    for d, c in CARDS:
        if d.key == dashboard_key and c.key == card_key:
            return d, c
    raise KeyError(card_key)


@pytest.mark.parametrize(("dashboard", "card"), CARDS, ids=[f"{d.key}/{c.key}" for d, c in CARDS])
async def test_card_runs_returns_its_columns_and_honours_filters(data, dashboard, card):
    conn, now = data
    await check_card(conn, dashboard, card, dashboard_data.FILTER_VALUES, now)


async def test_a_card_reading_a_missing_column_fails_the_check(data):
    conn, now = data
    d, c = _card("market_health", "spread_bps")
    broken = dataclasses.replace(c, sql=c.sql.replace("f.spread_bps_mean", "f.spread_bps_median"))
    with pytest.raises(CardCheckError, match="spread_bps_median"):
        await check_card(conn, d, broken, dashboard_data.FILTER_VALUES, now)


async def test_a_card_whose_chart_names_a_column_the_sql_lacks_fails_the_check(data):
    conn, now = data
    d, c = _card("ops_overview", "messages_per_minute")
    broken = dataclasses.replace(c, visualization_settings={**c.visualization_settings, "graph.metrics": ["msgs"]})
    with pytest.raises(CardCheckError, match=r"needs columns \['msgs'\]"):
        await check_card(conn, d, broken, dashboard_data.FILTER_VALUES, now)


async def test_a_card_ignoring_its_venue_filter_fails_the_check(data):
    conn, now = data
    d, c = _card("ops_overview", "rejected_by_reason")
    broken = dataclasses.replace(c, sql=c.sql.replace("[[AND r.venue = {{venue}}]]", "[[AND {{venue}} = {{venue}}]]"))
    with pytest.raises(CardCheckError, match="venue"):
        await check_card(conn, d, broken, dashboard_data.FILTER_VALUES, now)


async def test_freshness_marks_the_quiet_feed_down_and_the_market_without_data(data):
    conn, _ = data
    d, c = _card("ops_overview", "feed_freshness")
    result = await run_as_readonly(conn, d, c)
    status = {(r[0], r[1]): r[result.columns.index("status")] for r in result.rows}
    age = dict(zip(((r[0], r[1]) for r in result.rows), result.column("last_message_age_s"), strict=True))
    assert status[("hyperliquid", "ETH")] == "down"
    assert 8 * 60 - 5 < age[("hyperliquid", "ETH")] < 8 * 60 + 60
    assert status[("binance", "SOLUSDT")] == "no data" and age[("binance", "SOLUSDT")] is None
    assert age[("binance", "BTCUSDT")] < age[("hyperliquid", "ETH")]
    # The first rows are the ones needing attention.
    assert result.rows[0][result.columns.index("status")] == "no data"


async def test_rejections_follow_the_time_window(data):
    conn, _ = data
    d, c = _card("ops_overview", "rejected_by_reason")
    day = await run_as_readonly(conn, d, c, {"hours": 24})
    hour = await run_as_readonly(conn, d, c, {"hours": 1})
    assert "nan_price" in day.column("reason")
    assert "nan_price" not in hour.column("reason")
    counts = dict(
        zip(zip(hour.column("reason"), hour.column("venue"), strict=True), hour.column("rejected"), strict=True)
    )
    assert counts[("crossed_book", "binance")] == 3 and counts[("unknown_symbol", "hyperliquid")] == 4


async def test_job_health_shows_the_heartbeat_and_failures_under_either_license(data, license):
    conn, _ = data
    d, c = _card("ops_overview", "job_health")
    result = await run_as_readonly(conn, d, c)
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    tower = {r["job"]: r for r in rows if r["source"] == "tower jobs"}
    assert tower["heartbeat"]["health"] == "ok" and tower["heartbeat"]["runs"] == dashboard_data.MINUTES
    assert tower["risk_score"]["failures"] == 1
    policies = [r for r in rows if r["source"] == "timescaledb"]
    if license == "timescale":
        assert any(r["job"] == "ops.raw_trades compression" for r in policies)
    else:
        assert policies == []


async def test_ops_overview_shows_the_towers_own_alerts_and_each_ingest_backlog(data):
    conn, _ = data
    d, c = _card("ops_overview", "pipeline_alerts")
    result = await run_as_readonly(conn, d, c)
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    assert [(r["rule"], r["what"], r["state"]) for r in rows] == [
        ("pipeline_job_failed", "retention (jobs service)", "firing")
    ]
    d, c = _card("ops_overview", "ingest_backlog")
    result = await run_as_readonly(conn, d, c)
    rows = {r[0]: dict(zip(result.columns, r, strict=True)) for r in result.rows}
    assert (rows["ingest-2"]["health"], rows["ingest-2"]["spill_mb"], rows["ingest-2"]["queued_groups"]) == (
        "spilling",
        3.0,
        40,
    )
    assert rows["ingest-1"]["health"] == "ok" and rows["ingest-1"]["venues"] == "binance, okx"


async def test_storage_shows_every_hypertable_and_a_ratio_only_where_compressed(data, license):
    conn, _ = data
    d, c = _card("ops_overview", "storage")
    result = await run_as_readonly(conn, d, c)
    rows = {r[0]: dict(zip(result.columns, r, strict=True)) for r in result.rows}
    assert {"ops.raw_trades", "ops.raw_book_l1", "ops.risk_scores"} <= set(rows)
    assert rows["ops.raw_book_l1"]["size_mb"] > 0
    if license == "timescale":
        assert rows["ops.raw_trades"]["compressed_chunks"] >= 1
        assert rows["ops.raw_trades"]["compression_ratio"] > 1
        assert "ops.features_1m" not in rows and "ops.book_1m" in rows  # caggs listed by their view name
    else:
        assert all(r["compression_ratio"] is None for r in rows.values())


async def test_cross_venue_basis_is_symmetric_around_the_mean(data):
    conn, _ = data
    d, c = _card("market_health", "cross_venue_basis")
    result = await run_as_readonly(conn, d, c, {"asset": "BTC"})
    by_minute: dict = {}
    for minute, venue, basis in zip(
        result.column("minute"), result.column("venue"), result.column("basis_bps"), strict=True
    ):
        by_minute.setdefault(minute, {})[venue] = basis
    assert by_minute and all(len(v) == 2 for v in by_minute.values())
    assert all(abs(sum(v.values())) < 0.02 for v in by_minute.values())
    # Hyperliquid quotes BTC about 2 bps above Binance in the data set: +1 bps vs the two-venue mean.
    hyperliquid = [v["hyperliquid"] for v in by_minute.values()]
    assert sum(hyperliquid) / len(hyperliquid) == pytest.approx(1.03, abs=0.3)


async def test_open_events_keep_venue_wide_events_when_a_symbol_is_chosen(data):
    conn, _ = data
    d, c = _card("risk_monitor", "open_events")
    result = await run_as_readonly(conn, d, c, {"venue": "hyperliquid", "symbol": "ETH"})
    assert sorted(result.column("rule")) == ["feed_down", "stale_feed"]
    assert result.column("severity")[0] == "critical"
    everything = await run_as_readonly(conn, d, c)
    assert set(everything.column("state")) == {"pending", "firing"}


async def test_current_risk_names_the_top_component(data):
    conn, _ = data
    d, c = _card("risk_monitor", "current_risk")
    result = await run_as_readonly(conn, d, c)
    rows = {(r[0], r[1]): dict(zip(result.columns, r, strict=True)) for r in result.rows}
    quiet = rows[dashboard_data.QUIET]
    assert quiet["top_component"] == "freshness" and quiet["score"] == pytest.approx(95.0)
    assert quiet["top_component_score"] == pytest.approx(95.0)
    assert len(rows) == len(dashboard_data.MARKETS)


async def test_funding_is_normalized_to_8h_so_venues_paying_hourly_compare(data):
    conn, _ = data
    d, c = _card("market_health", "funding_8h")
    result = await run_as_readonly(conn, d, c, {"asset": "BTC"})
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    by_venue = {v: [r for r in rows if r["venue"] == v] for v in ("binance", "hyperliquid")}
    # 0.0001 per 8 h and 0.00002 per hour (each +-5 %): 1 bp and 1.6 bps per 8 h.
    assert by_venue["binance"] and all(0.95 <= r["funding_8h_bps"] <= 1.05 for r in by_venue["binance"])
    assert by_venue["hyperliquid"] and all(1.52 <= r["funding_8h_bps"] <= 1.68 for r in by_venue["hyperliquid"])
    assert all(9.5 <= r["funding_annualized_pct"] <= 11.6 for r in by_venue["binance"])  # 0.0001 x 3 x 365
    assert all(r["next_funding_ts"] > r["minute"] for r in rows)


async def test_basis_shows_the_mark_blowing_out_over_the_index(data):
    conn, now = data
    d, c = _card("market_health", "basis_bps")
    result = await run_as_readonly(conn, d, c, {"asset": "BTC"})
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    binance = [r for r in rows if r["market"] == "binance BTCUSDT"]
    blown = [r for r in binance if r["basis_bps_mean"] > 30]
    # Three minutes of a 60 bps mark premium: at least two whole buckets, all between 19 and 24 minutes ago.
    assert len(blown) >= 2 and max(r["basis_bps_max"] for r in binance) == pytest.approx(60.0, abs=0.01)
    assert all(now - timedelta(minutes=24) <= r["minute"] <= now - timedelta(minutes=19) for r in blown)
    quiet = sorted(r["basis_bps_mean"] for r in binance if r not in blown)
    assert quiet[len(quiet) // 2] == pytest.approx(2.0, abs=0.5)
    hyperliquid = sorted(r["basis_bps_mean"] for r in rows if r["market"] == "hyperliquid BTC")
    assert hyperliquid[len(hyperliquid) // 2] == pytest.approx(-3.0, abs=0.5)


async def test_liquidations_by_side_add_up_to_the_forced_orders(data):
    conn, _ = data
    d, c = _card("market_health", "liquidations")

    def expected(asset: str, hours: float) -> dict[str, float]:
        sides = {"sell": "longs liquidated (sell)", "buy": "shorts liquidated (buy)"}
        totals: dict[str, float] = {}
        for ago, venue, symbol, side, px, qty in dashboard_data.LIQUIDATIONS:
            market_asset = next(m[2] for m in dashboard_data.MARKETS if m[:2] == (venue, symbol))
            if market_asset == asset and ago < hours * 3600 - 60:
                totals[sides[side]] = totals.get(sides[side], 0.0) + px * qty
        return totals

    for asset, hours in (("BTC", 6), ("BTC", 1), ("ETH", 6)):
        result = await run_as_readonly(conn, d, c, {"asset": asset, "hours": hours})
        got: dict[str, float] = {}
        for side, notional in zip(result.column("side"), result.column("liq_notional"), strict=True):
            got[side] = got.get(side, 0.0) + notional
        want = expected(asset, hours)
        assert set(got) == set(want) and all(got[k] == pytest.approx(want[k], abs=5) for k in want), (asset, hours)
    # The Binance long squeeze (about 3.8M of sells within a minute or two) stands out.
    btc = await run_as_readonly(conn, d, c, {"venue": "binance", "symbol": "BTCUSDT", "hours": 1})
    sells = [n for s, n in zip(btc.column("side"), btc.column("liq_notional"), strict=True) if s.startswith("longs")]
    assert sum(sells) == pytest.approx(96_900 * 12 + 96_880 * 20 + 96_850 * 6.5, abs=5)


async def test_completeness_card_has_a_row_per_market_and_day_with_data(data):
    conn, _ = data
    d, c = _card("ops_overview", "completeness_daily")
    result = await run_as_readonly(conn, d, c)
    markets = {(r[0], r[1]) for r in result.rows}
    assert ("binance", "BTCUSDT") in markets and ("binance", "SOLUSDT") not in markets  # SOLUSDT has no data
    assert all(0 <= p <= 100 for p in result.column("pct_complete"))
    assert all(
        m <= w for m, w in zip(result.column("minutes_complete"), result.column("minutes_with_data"), strict=True)
    )


async def test_depth_within_25bps_shows_the_drained_book_and_slippage_what_it_cost(data):
    conn, now = data
    d, c = _card("market_health", "depth_25bps")
    depth = await run_as_readonly(conn, d, c)
    rows = [dict(zip(depth.columns, r, strict=True)) for r in depth.rows]
    btc = [r for r in rows if (r["venue"], r["symbol"]) == dashboard_data.DEPTH_DRAIN[0]]
    thinnest = min(btc, key=lambda r: r["depth_25bps"])
    usual = dashboard_data.DEPTH[dashboard_data.DEPTH_DRAIN[0]][0]
    assert thinnest["depth_25bps"] == pytest.approx(usual * dashboard_data.DEPTH_DRAIN[2], rel=0.01)
    assert timedelta(minutes=11) < now - thinnest["minute"] < timedelta(minutes=15)
    assert all(r["depth_25bps"] > 0.85 * usual for r in btc if abs(now - r["minute"] - timedelta(minutes=13)) > 3 * M)
    assert all(r["bid_25bps_mean"] + r["ask_25bps_mean"] == pytest.approx(r["depth_25bps"], abs=1) for r in rows)
    # The quiet feed's books stopped with it: no depth rows for its last minutes.
    eth = await run_as_readonly(conn, d, c, {"asset": "ETH"})
    quiet = [
        r[0]
        for r in eth.rows
        if (r[eth.columns.index("venue")], r[eth.columns.index("symbol")]) == dashboard_data.QUIET
    ]
    assert quiet and now - max(quiet) > timedelta(minutes=8)

    d, c = _card("market_health", "slippage_100k")
    rows = [
        dict(zip(result.columns, r, strict=True))
        for result in [await run_as_readonly(conn, d, c, {"asset": asset}) for asset in ("BTC", "ETH")]
        for r in result.rows
    ]
    btc_slip = {
        r["minute"]: r["slip_bps_max"] for r in rows if (r["venue"], r["symbol"]) == dashboard_data.DEPTH_DRAIN[0]
    }
    worst = 0.3 / dashboard_data.DEPTH_DRAIN[2]  # usual slippage / the share of the book left
    assert btc_slip[thinnest["minute"]] == pytest.approx(worst, rel=0.01) == max(btc_slip.values())
    expensive = [m for m, v in btc_slip.items() if v > 0.5]  # the drained book is the expensive one
    assert expensive and all(timedelta(minutes=11) < now - m < timedelta(minutes=16) for m in expensive)
    # Samples the held book could not fill are counted, and leave the other samples' slippage.
    unfillable = [r for r in rows if (r["venue"], r["symbol"]) == dashboard_data.UNFILLABLE]
    assert sum(r["unfillable_samples"] for r in unfillable) > 0 and all(r["slip_bps_max"] > 0 for r in unfillable)
    assert all(r["unfillable_samples"] == 0 for r in rows if (r["venue"], r["symbol"]) != dashboard_data.UNFILLABLE)
