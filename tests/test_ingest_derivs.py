"""Derivatives context from Binance (markPrice@1s, forceOrder, REST open interest) and Hyperliquid
(activeAssetCtx), through loopback servers speaking the venues' formats, into the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ingest.sim.binance_server import BinanceServer, force_order, mark_price
from ingest.sim.hyperliquid_server import HyperliquidServer, asset_ctx
from ingest.venues.binance import Binance
from ingest.venues.hyperliquid import Hyperliquid
from tests.support.ingest_helpers import running, wait_until
from tower.cagg_refresh import refresh_feature_caggs


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


START = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
T0 = ms(START)


@pytest.fixture
async def binance():
    s = await BinanceServer().start()
    yield s
    await s.stop()


@pytest.fixture
async def hyperliquid():
    s = await HyperliquidServer().start()
    yield s
    await s.stop()


def rest_root(server: BinanceServer) -> str:
    return server.root.replace("ws://", "http://")


async def test_binance_mark_funding_liquidations_and_open_interest(binance, conn, db_dsn, tmp_path):
    binance.open_interest["BTCUSDT"] = ("10659.509", T0 + 500)
    binance.funding_hours["BTCUSDT"] = 4  # listed by fundingInfo: not the 8 h default
    venue = Binance(["BTCUSDT"], ws_url=binance.root, rest_url=rest_root(binance), oi_min_interval_s=0.2)
    async with running(db_dsn, [venue], tmp_path) as run:
        await binance.wait_subscribed("btcusdt@markPrice@1s")
        await binance.wait_subscribed("btcusdt@forceOrder")
        await binance.publish(mark_price("BTCUSDT", "91010.5", "91000.0", "0.00012", T0 + 8 * 3600_000, T0))
        await binance.publish(mark_price("BTCUSDT", "91020.0", "91001.0", "0.00013", T0 + 8 * 3600_000, T0 + 1000))
        await binance.publish(mark_price("BTCUSDT", "91020.0", "91001.0", "0.00013", T0 + 8 * 3600_000, T0 + 1000))
        await binance.publish(force_order("BTCUSDT", "SELL", "90950.1", "0.5", T0 + 1200))
        await binance.publish(force_order("BTCUSDT", "BUY", "91050.0", "0.25", T0 + 1500))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs WHERE mark_px IS NOT NULL", 2)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_liquidations", 2)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs WHERE open_interest IS NOT NULL", 1)
        await binance.wait_until(lambda: len(binance.rest_requests) >= 3)  # polled again while unchanged
        binance.open_interest["BTCUSDT"] = ("10700.0", T0 + 30_000)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs WHERE open_interest IS NOT NULL", 2)
        await run.finish()

    marks = await conn.fetch("SELECT * FROM ops.raw_derivs WHERE mark_px IS NOT NULL ORDER BY ts")
    assert [
        (
            ms(r["ts"]),
            r["mark_px"],
            r["index_px"],
            r["funding_rate"],
            r["funding_interval"],
            ms(r["next_funding_ts"]),
            r["open_interest"],
        )
        for r in marks
    ] == [
        (T0, 91010.5, 91000.0, 0.00012, timedelta(hours=4), T0 + 8 * 3600_000, None),
        (T0 + 1000, 91020.0, 91001.0, 0.00013, timedelta(hours=4), T0 + 8 * 3600_000, None),  # repeat dropped
    ]
    ois = await conn.fetch(
        "SELECT ts, open_interest, mark_px FROM ops.raw_derivs WHERE open_interest IS NOT NULL ORDER BY ts"
    )
    assert [(ms(r["ts"]), r["open_interest"], r["mark_px"]) for r in ois] == [
        (T0 + 500, 10659.509, None),
        (T0 + 30_000, 10700.0, None),
    ]
    # Unchanged open interest (same venue time) was polled again but not stored again.
    assert binance.rest_requests[0] == "/fapi/v1/fundingInfo"  # once, before connecting
    assert all(p == "/fapi/v1/openInterest?symbol=BTCUSDT" for p in binance.rest_requests[1:])
    liqs = await conn.fetch("SELECT ts, side, price, qty FROM ops.raw_liquidations ORDER BY ts")
    assert [(ms(r["ts"]), r["side"], r["price"], r["qty"]) for r in liqs] == [
        (T0 + 1200, "sell", 90950.1, 0.5),
        (T0 + 1500, "buy", 91050.0, 0.25),
    ]

    await refresh_feature_caggs(conn, START, START + timedelta(minutes=1))
    f = await conn.fetchrow("SELECT * FROM ops.derivs_features_1m WHERE venue = 'binance' AND bucket = $1", START)
    assert f["basis_bps_mean"] == pytest.approx(((10.5 / 91000) + (19 / 91001)) / 2 * 1e4)
    assert f["funding_8h"] == pytest.approx(0.00026)  # 0.013 % every 4 h is 0.026 % per 8 h
    assert f["oi_change"] == pytest.approx(10700.0 - 10659.509)
    assert f["liq_sell_notional"] == pytest.approx(90950.1 * 0.5)
    assert f["liq_buy_notional"] == pytest.approx(91050.0 * 0.25)


async def test_binance_derivs_ride_the_market_route(binance, conn, db_dsn, tmp_path):
    """markPrice and forceOrder subscribed on /public would be acknowledged and never delivered."""
    venue = Binance(["BTCUSDT"], ws_url=binance.root, rest_url=rest_root(binance), oi_weight_per_min=0)
    assert venue.polls() == []
    async with running(db_dsn, [venue], tmp_path):
        await binance.wait_subscribed("btcusdt@markPrice@1s")
    streams = await conn.fetchval(
        "SELECT streams FROM ops.connection_events WHERE event = 'subscribed' "
        "AND url LIKE '%/market/ws' AND 'btcusdt@markPrice@1s' = any(streams)"
    )
    assert streams == ["btcusdt@markPrice@1s", "btcusdt@forceOrder"]


def test_open_interest_polls_stay_inside_the_weight_budget():
    symbols = [f"S{i}USDT" for i in range(40)]
    polls = Binance(symbols, oi_weight_per_min=120).polls()
    assert len(polls) == 40
    per_minute = sum(60 / p.every_s for p in polls)
    assert per_minute == pytest.approx(120)
    assert Binance(["BTCUSDT"], oi_weight_per_min=120).polls()[0].every_s == 5.0  # floor for few symbols


async def test_rate_limited_poll_backs_off_and_is_recorded(binance, conn, db_dsn, tmp_path):
    binance.open_interest["ETHUSDT"] = ("250000.5", T0)
    binance.rate_limited = 2  # the fundingInfo read at start (falls back to 8 h) and the first poll
    venue = Binance(["ETHUSDT"], ws_url=binance.root, rest_url=rest_root(binance), oi_min_interval_s=0.2)
    async with running(db_dsn, [venue], tmp_path):
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 1)
    reason = await conn.fetchval("SELECT reason FROM ops.connection_events WHERE conn_id = 'rest' AND event = 'error'")
    assert "HTTP 429" in reason and "pausing" in reason
    assert await conn.fetchval("SELECT open_interest FROM ops.raw_derivs") == 250000.5


async def test_bad_derivs_messages_are_quarantined(binance, conn, db_dsn, tmp_path):
    venue = Binance(["BTCUSDT"], ws_url=binance.root, rest_url=rest_root(binance), oi_weight_per_min=0)
    async with running(db_dsn, [venue], tmp_path):
        await binance.wait_subscribed("btcusdt@markPrice@1s")
        bad_mark = mark_price("BTCUSDT", "NaN", "91000", "0.0001", T0, T0)
        bad_funding = mark_price("BTCUSDT", "91000", "91000", "5", T0, T0 + 1)  # 500 % per 8 h
        bad_liq = force_order("BTCUSDT", "SELL", "-1", "0.5", T0 + 2)
        for payload in (bad_mark, bad_funding, bad_liq):
            await binance.publish(payload)
        await binance.publish(mark_price("BTCUSDT", "91000", "90990", "0.0001", T0, T0 + 3))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 1)
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 3)
    reasons = sorted(
        r["stream"] + " " + r["reason"].split(":")[1].strip()
        for r in await conn.fetch("SELECT stream, reason FROM ops.rejected_messages")
    )
    assert reasons == ["forceOrder o.p", "markPrice p", "markPrice r"]


async def test_hyperliquid_active_asset_ctx(hyperliquid, conn, db_dsn, tmp_path):
    venue = Hyperliquid(["BTC"], ws_url=hyperliquid.url)
    async with running(db_dsn, [venue], tmp_path):
        await hyperliquid.wait_subscribed("activeAssetCtx", "BTC")
        before = datetime.now(UTC)
        ctx = asset_ctx("BTC", "91050.0", "91000.0", "0.0000125", "25000.5")
        await hyperliquid.publish("activeAssetCtx", "BTC", ctx)
        await hyperliquid.publish("activeAssetCtx", "BTC", ctx)  # the same state again: not stored twice
        await asyncio.sleep(0.05)
        await hyperliquid.publish("activeAssetCtx", "BTC", asset_ctx("BTC", "91060.0", "91010.0", "0.0000130", "25100"))
        await hyperliquid.publish("activeAssetCtx", "BTC", {"coin": "BTC", "ctx": {"markPx": "-1"}})
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 2)
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 1)
    rows = await conn.fetch("SELECT * FROM ops.raw_derivs ORDER BY ts")
    assert [
        (r["mark_px"], r["index_px"], r["funding_rate"], r["funding_interval"], r["open_interest"]) for r in rows
    ] == [
        (91050.0, 91000.0, 0.0000125, timedelta(hours=1), 25000.5),
        (91060.0, 91010.0, 0.0000130, timedelta(hours=1), 25100.0),
    ]
    first = rows[0]
    assert first["ts"] == first["recv_ts"] and first["ts"] >= before  # the context carries no venue time
    assert first["next_funding_ts"] == first["ts"].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert await conn.fetchval("SELECT stream FROM ops.rejected_messages") == "activeAssetCtx"
