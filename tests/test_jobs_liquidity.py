"""The liquidity component and the liquidity_drain rule, from depth samples in ops.raw_book_depth through
ops.depth_features_1m, scoring, the event lifecycle, incomplete minutes and the backtest (real TimescaleDB)."""

from __future__ import annotations

import asyncio
import json
import statistics
from datetime import timedelta

import asyncpg
import pytest

from jobs.backtest import compare, simulate
from jobs.rules import load_rules
from jobs.scoring import score_minutes
from jobs.service import Jobs, run_once
from jobs.settings import JobsSettings
from tests.support.depth import Depth, write_depth
from tests.support.fixtures import T0
from tests.support.market import INSTRUMENTS, write_market
from tests.support.scenarios import after
from tests.support.webhooks import webhook_receiver
from tower.cagg_refresh import refresh_feature_caggs
from tower.cli import main

M = timedelta(minutes=1)
RULES = load_rules()
CFG = RULES.scoring
# Full books on three markets; the SOL markets (and Hyperliquid ETH) have none.
DEPTH_MARKETS = [(v, s, mid) for v, s, mid in INSTRUMENTS if s in ("BTCUSDT", "ETHUSDT", "BTC")]


@pytest.fixture
async def pool(db_dsn):
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3)
    yield p
    await p.close()


def usual_btc(m: int) -> float:
    return 2e6 * (1 + 0.05 * (m % 4))  # varies minute to minute, so the median is a real median


def scoring_shape(venue, symbol, m):
    if (venue, symbol) == ("binance", "BTCUSDT"):
        return Depth(5e5 if m == 30 else usual_btc(m), 0.5)  # the book within 25 bps pulled at minute 30
    if (venue, symbol) == ("binance", "ETHUSDT"):
        return Depth(1e6, 16.0 if m == 30 else 4.0 + 0.1 * (m % 3))  # slippage 4x its usual at minute 30
    # Hyperliquid BTC: a deep book whose 100k order costs 0.3 bps, under the slippage floor.
    return Depth(3e6, {30: 1.5, 31: 8.0, 32: None}.get(m, 0.3))


def linear_points(value: float) -> float:
    comp = CFG.components["liquidity"]
    return 100 * min(1.0, max(0.0, (value - comp.low) / (comp.high - comp.low)))


async def test_liquidity_scores_the_depth_drop_and_slippage_rise_and_nothing_without_books(conn):
    await write_market(conn, 40)
    await write_depth(conn, DEPTH_MARKETS, 40, scoring_shape)
    # Hyperliquid ETH gets books only from minute 25: too short a baseline at minute 30, enough at 36.
    await write_depth(conn, [("hyperliquid", "ETH", 3_000.0)], 40, lambda v, s, m: Depth(8e5, 3.0) if m >= 25 else None)
    await refresh_feature_caggs(conn, T0, T0 + 40 * M)
    scores = {((s.bucket - T0) // M, s.venue, s.symbol): s for s in await score_minutes(conn, T0, T0 + 40 * M, CFG)}
    view = {
        ((r["bucket"] - T0) // M, r["venue"], r["symbol"]): r
        for r in await conn.fetch("SELECT bucket, venue, symbol, depth_25bps, slip_bps_max FROM ops.depth_features_1m")
    }

    def median_before(key: str, m: int, venue: str, symbol: str) -> float:
        history = [view[(k, venue, symbol)][key] for k in range(max(0, m - CFG.baseline_minutes), m)]
        return statistics.median(x for x in history if x is not None)

    # Binance BTC, minute 30: depth within 25 bps at 5e5 against a median of about 2.15e6.
    btc = scores[(30, "binance", "BTCUSDT")]
    drop = (1 - 5e5 / median_before("depth_25bps", 30, "binance", "BTCUSDT")) * 100
    assert btc.stored["depth_25bps"] == pytest.approx(5e5) and btc.stored["depth_25bps_drop_pct"] == pytest.approx(drop)
    assert btc.components["liquidity"]["value"] == pytest.approx(drop, abs=1e-5)
    assert btc.components["liquidity"]["points"] == pytest.approx(linear_points(drop), abs=1e-3)
    assert 50 < linear_points(drop) < 100 and btc.top_component == "liquidity"
    assert btc.score == pytest.approx(linear_points(drop) * CFG.components["liquidity"].weight, abs=1e-3)
    # A minute at or above its median drops nothing; the usual minutes score no points.
    assert scores[(29, "binance", "BTCUSDT")].components["liquidity"]["points"] == 0
    assert scores[(31, "binance", "BTCUSDT")].stored["depth_25bps_drop_pct"] == 0

    # Binance ETH, minute 30: the same depth but the 100k order costs 4x: 1 - usual / now of the liquidity gone.
    eth = scores[(30, "binance", "ETHUSDT")]
    rise = (1 - median_before("slip_bps_max", 30, "binance", "ETHUSDT") / 16.0) * 100
    assert eth.stored["depth_25bps_drop_pct"] == 0 and eth.stored["slip_bps"] == pytest.approx(16.0)
    assert eth.stored["liquidity_drop_pct"] == pytest.approx(rise) and 70 < rise < 80
    assert eth.components["liquidity"]["points"] == pytest.approx(linear_points(rise), abs=1e-3)

    # Hyperliquid BTC: a rise from 0.3 to 1.5 bps is below the floor (2 bps) and scores nothing; 8 bps is
    # 1 - 2/8 = 75 % gone; a minute the held book could not fill the order leaves the depth view alone.
    hl = {m: scores[(m, "hyperliquid", "BTC")] for m in (30, 31, 32)}
    assert hl[30].stored["liquidity_drop_pct"] == 0 and hl[30].components["liquidity"]["points"] == 0
    assert hl[31].stored["liquidity_drop_pct"] == pytest.approx(75.0)
    assert hl[32].stored["slip_bps"] is None and hl[32].stored["liquidity_drop_pct"] == 0

    # Too few minutes of books for a baseline: no value rather than a noisy one; then it scores.
    assert scores[(30, "hyperliquid", "ETH")].stored["depth_25bps"] == pytest.approx(8e5)
    assert scores[(30, "hyperliquid", "ETH")].components["liquidity"] == {"value": None, "points": 0.0}
    assert scores[(36, "hyperliquid", "ETH")].stored["liquidity_drop_pct"] == 0

    # No full book at all: NULL metrics and 0 points every minute, never a false alarm.
    for venue, symbol in (("binance", "SOLUSDT"), ("hyperliquid", "SOL")):
        for m in range(40):
            s = scores[(m, venue, symbol)]
            assert s.components["liquidity"] == {"value": None, "points": 0.0}, (m, venue, symbol)
            assert all(
                s.stored[k] is None for k in ("depth_25bps", "depth_25bps_drop_pct", "slip_bps", "liquidity_drop_pct")
            )
            assert s.score == 0

    # What was stored is what was scored.
    row = await conn.fetchrow(
        "SELECT depth_25bps, depth_25bps_drop_pct, slip_bps, liquidity_drop_pct, components FROM ops.risk_scores "
        "WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND bucket = $1",
        T0 + 30 * M,
    )
    assert row["depth_25bps_drop_pct"] == row["liquidity_drop_pct"] == pytest.approx(drop)
    assert json.loads(row["components"])["liquidity"]["points"] == pytest.approx(linear_points(drop), abs=1e-3)


DRAIN_MINUTES = 40


def drain_shape(venue, symbol, m):
    if (venue, symbol) == ("binance", "BTCUSDT"):
        # 25-27: 80 % of the book gone (warning), 28-29: 95 % (critical), 30-31: 60 %, between clear_at and
        # the warning level (still firing), from 32: back.
        factor = 0.2 if 25 <= m < 28 else 0.05 if 28 <= m < 30 else 0.4 if 30 <= m < 32 else 1.0
        return Depth(usual_btc(m) * factor, 0.5)
    if (venue, symbol) == ("binance", "ETHUSDT"):
        return Depth(1e6, 15.0 if 10 <= m < 14 else 3.0)  # slippage 5x its usual for 4 minutes: 80 %
    # Hyperliquid BTC: its depth feed stops at minute 20. No samples is no liquidity signal, not a drain.
    return Depth(3e6, 0.3) if m < 20 else None


async def prepare_drain(conn) -> None:
    await conn.execute("UPDATE ops.policy_settings SET retention = NULL WHERE kind = 'hypertable'")
    await write_market(conn, DRAIN_MINUTES)
    await write_depth(conn, DEPTH_MARKETS, DRAIN_MINUTES, drain_shape)
    await refresh_feature_caggs(conn, T0, T0 + DRAIN_MINUTES * M)


async def run_live(conn, pool, rules) -> tuple[list[asyncpg.Record], list[dict]]:
    with webhook_receiver() as rx:
        settings = JobsSettings(alert_webhook_url=rx.url("/hook"), jobs_settle_s=10, alert_backoff_s=0.01)
        jobs = Jobs(pool=pool, rules=rules, settings=settings, started_at=T0)
        for n in range(DRAIN_MINUTES):  # the live service: one pass after each minute closes
            jobs.now = after(n)
            await run_once(jobs)
        hooks = rx.bodies("/hook")
    return await conn.fetch("SELECT * FROM ops.risk_events ORDER BY opened_at, rule, venue, symbol"), hooks


async def test_liquidity_drain_fires_escalates_and_resolves_only_where_books_drained(conn, pool):
    await prepare_drain(conn)
    events, hooks = await run_live(conn, pool, RULES)

    assert [(e["rule"], e["venue"], e["symbol"]) for e in events] == [
        ("liquidity_drain", "binance", "ETHUSDT"),
        ("liquidity_drain", "binance", "BTCUSDT"),
    ]
    eth, btc = events
    minute = lambda n: T0 + n * M  # noqa: E731
    assert (eth["state"], eth["severity"], eth["opened_at"], eth["fired_at"], eth["last_seen"], eth["resolved_at"]) == (
        "resolved",
        "warning",
        minute(10),
        minute(12),  # held for_minutes = 3
        minute(13),
        minute(16),  # clear for clear_minutes = 3
    )
    assert eth["peak_value"] == pytest.approx(80.0)
    assert (btc["state"], btc["severity"], btc["opened_at"], btc["fired_at"], btc["last_seen"], btc["resolved_at"]) == (
        "resolved",
        "critical",
        minute(25),
        minute(27),
        minute(31),  # 60 % gone is above clear_at (50): still firing on the way back
        minute(34),
    )
    assert 95 < btc["peak_value"] < 96  # 5 % of the usual book left

    assert [(h["kind"], h["event"]["symbol"], h["data_time"]) for h in hooks] == [
        ("firing", "ETHUSDT", minute(12).isoformat()),
        ("resolved", "ETHUSDT", minute(16).isoformat()),
        ("firing", "BTCUSDT", minute(27).isoformat()),
        ("escalated", "BTCUSDT", minute(28).isoformat()),
        ("resolved", "BTCUSDT", minute(34).isoformat()),
    ]
    assert hooks[0]["event"]["message"] == (
        "liquidity_drain on binance ETHUSDT: liquidity_drop_pct 80 (>= 70; peak 80)"
    )
    # The stopped depth feed and the markets without books scored no liquidity at all.
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM ops.risk_scores WHERE liquidity_drop_pct IS NOT NULL AND "
            "(symbol LIKE 'SOL%' OR symbol = 'ETH' OR (symbol = 'BTC' AND bucket >= $1))",
            minute(20),
        )
        == 0
    )


async def test_liquidity_drain_skips_incomplete_minutes_unless_told(conn, pool, tmp_path):
    await prepare_drain(conn)
    # The Binance BTC trade feed with an open hole over the drain (a depth-book break alone would not do:
    # it is closed by its resync and says nothing about the minute's trades and L1).
    await conn.execute(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, from_ts, to_ts, cause) "
        "VALUES ('binance', 'BTCUSDT', 'aggTrade', $1, $2, 'id_jump')",
        T0 + 24 * M,
        T0 + 33 * M,
    )
    events, _ = await run_live(conn, pool, RULES)
    assert [(e["rule"], e["symbol"]) for e in events] == [("liquidity_drain", "ETHUSDT")]

    await conn.execute("TRUNCATE ops.risk_scores, ops.risk_events, ops.job_cursors CASCADE")
    override = tmp_path / "rules.toml"
    override.write_text("[rules.liquidity_drain]\nfire_on_incomplete = true\n")
    events, _ = await run_live(conn, pool, load_rules(override))
    btc = next(e for e in events if e["symbol"] == "BTCUSDT")
    assert btc["fired_at"] == T0 + 27 * M and T0 + 25 * M <= btc["incomplete_at"] <= T0 + 31 * M


async def test_backtest_replays_liquidity_drain_and_compares_a_slower_rule(
    conn, pool, db_dsn, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    monkeypatch.delenv("TOWER_RULES_FILE", raising=False)
    await prepare_drain(conn)
    live, _ = await run_live(conn, pool, RULES)
    replayed = [e for e in await simulate(conn, RULES, T0, T0 + DRAIN_MINUTES * M) if e.rule == "liquidity_drain"]
    assert [(e.symbol, e.severity, e.opened_at, e.fired_at, e.resolved_at) for e in replayed] == [
        (e["symbol"], e["severity"], e["opened_at"], e["fired_at"], e["resolved_at"]) for e in live
    ]

    (tmp_path / "slow.toml").write_text("[rules.liquidity_drain]\nfor_minutes = 5\n")
    result = await compare(conn, RULES, load_rules(tmp_path / "slow.toml"), T0, T0 + DRAIN_MINUTES * M)
    now, slow = result["liquidity_drain"]["current"], result["liquidity_drain"]["candidate"]
    assert (now.events, now.fired, now.median_minutes_to_fire) == (2, 2, 2)
    # The slippage spike lasted 4 minutes: too short for 5; the BTC drain (7 minutes) still fires.
    assert (slow.events, slow.fired, slow.median_minutes_to_fire) == (2, 1, 4)

    # The command a user runs gives the same comparison.
    until = (T0 + DRAIN_MINUTES * M).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["rules", "backtest", "--rules", str(tmp_path / "slow.toml"), "--since", "1h", "--until", until, "--json"]
    capsys.readouterr()
    assert await asyncio.to_thread(main, args) == 0
    doc = json.loads(capsys.readouterr().out)["rules"]["liquidity_drain"]
    assert (doc["current"]["fired"], doc["candidate"]["fired"]) == (2, 1)
