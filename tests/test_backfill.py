"""Gap backfill from the venues' REST history, against loopback venues (WS + REST on one port) and the real
database: inside `tower ingest` soon after a gap, and by `tower backfill` for gaps left open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.sim.binance_server import BinanceServer, agg_trade
from ingest.sim.bybit_server import BybitServer
from ingest.sim.okx_server import OkxServer
from ingest.sim.okx_server import trade as okx_trade
from ingest.venues.binance import Binance
from ingest.venues.okx import Okx
from tests.support.ingest_helpers import env, running, wait_until
from tower.cli import build_parser

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
RESOLVED = "SELECT count(*) FROM ops.feed_gaps WHERE resolved_at IS NOT NULL"
GAP_SQL = "SELECT resolution, backfilled, missing, resolved_at FROM ops.feed_gaps"

INSERT_GAP = """
INSERT INTO ops.feed_gaps (venue, symbol, stream, from_id, to_id, missing, from_ts, to_ts, cause)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
"""


def binance_history(first: int, last: int) -> list[dict]:
    return [
        agg_trade("BTCUSDT", a, f"{90000 + a % 50}.5", "0.01", T0_MS + a, a % 2 == 0) for a in range(first, last + 1)
    ]


async def stored_ids(conn, venue: str) -> list[tuple[int, str]]:
    rows = await conn.fetch("SELECT trade_id, source FROM ops.raw_trades WHERE venue = $1", venue)
    return sorted((int(r["trade_id"]), r["source"]) for r in rows)


async def tower_backfill(*argv: str) -> int:
    args = build_parser().parse_args(["backfill", *argv])
    return await args.run(args)


async def test_binance_id_gap_is_filled_during_ingest_over_pages_and_a_rate_limit(conn, db_dsn, tmp_path):
    server = await BinanceServer().start()
    server.history["BTCUSDT"] = binance_history(100, 3500)
    server.history_page = 1000  # 3399 missing: four pages
    server.rate_limited = 1  # the first history request is answered 429, Retry-After 1 s
    venue = Binance(["BTCUSDT"], ws_url=server.root, rest_url=server.root.replace("ws://", "http://"), derivs=False)
    try:
        async with running(db_dsn, [venue], tmp_path, backfill_every_s=0.1) as run:
            await server.wait_subscribed("btcusdt@aggTrade")
            for a in (100, 3500):
                t = server.history["BTCUSDT"][a - 100]
                await server.publish(t)
            assert await wait_until(conn, RESOLVED, 1, within_s=30) == 1
            await run.finish()
    finally:
        await server.stop()
    assert await stored_ids(conn, "binance") == [(100, "ws")] + [(a, "rest") for a in range(101, 3500)] + [(3500, "ws")]
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"], gap["missing"]) == ("backfilled", 3399, 3399)
    history = [p for p in server.rest_requests if p.startswith("/fapi/v1/aggTrades")]
    assert history[0] == history[1] == "/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=101&limit=1000"  # 429, then again
    assert [p.split("fromId=")[1].split("&")[0] for p in history[1:]] == ["101", "1101", "2101", "3101"]
    # The minute's features count every trade once (TSL: the cagg was refreshed after the backfill).
    features = await conn.fetchrow(
        "SELECT trade_count, volume FROM ops.features_1m WHERE venue = 'binance' AND bucket = $1", T0
    )
    assert features["trade_count"] == 3401 and features["volume"] == pytest.approx(34.01)


async def test_okx_id_gap_pages_backwards_by_trade_id(conn, db_dsn, tmp_path):
    server = await OkxServer().start()
    items = [okx_trade("BTC-USDT-SWAP", str(i), "91000.5", "3", "buy", T0_MS + i)["data"][0] for i in range(1000, 1251)]
    server.history["BTC-USDT-SWAP"] = items
    venue = Okx(["BTC-USDT-SWAP"], ws_url=server.url, rest_url=server.rest_url, derivs=False)
    try:
        async with running(db_dsn, [venue], tmp_path, backfill_every_s=0.1) as run:
            await server.wait_subscribed("trades:BTC-USDT-SWAP")
            await server.publish(okx_trade("BTC-USDT-SWAP", "1000", "91000.5", "3", "buy", T0_MS + 1000))
            await server.publish(okx_trade("BTC-USDT-SWAP", "1250", "91000.5", "3", "buy", T0_MS + 1250))
            assert await wait_until(conn, RESOLVED, 1, within_s=30) == 1
            await run.finish()
    finally:
        await server.stop()
    assert await stored_ids(conn, "okx") == [(1000, "ws")] + [(i, "rest") for i in range(1001, 1250)] + [(1250, "ws")]
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"], gap["missing"]) == ("backfilled", 249, 249)
    pages = [p.split("after=")[1].split("&")[0] for p in server.history_requests]
    assert pages == ["1250", "1150", "1050"]  # 100 a page, newest first: 1149.., 1049.., 1001..
    assert await conn.fetchval("SELECT min(qty) = max(qty) AND min(qty) = 0.03 FROM ops.raw_trades")  # contracts


async def test_a_rest_that_is_down_leaves_the_gap_open_and_a_later_run_fills_it_once(
    conn, db_dsn, tmp_path, monkeypatch
):
    env(monkeypatch, db_dsn, tmp_path)
    server = await BinanceServer().start()
    server.history["BTCUSDT"] = binance_history(10, 40)
    rest = server.root.replace("ws://", "http://")
    # What a stopped ingest left: both ends stored, the gap recorded, nothing filled. Some of the gap's
    # trades were stored already (a replayed spill file, say): they must not come twice.
    await conn.execute(INSERT_GAP, "binance", "BTCUSDT", "aggTrade", 10, 40, 29, T0, T0, "id_jump")
    await conn.execute(
        "INSERT INTO ops.raw_trades (venue, symbol, ts, recv_ts, trade_id, price, qty, side) "
        "SELECT 'binance', 'BTCUSDT', $1::timestamptz + a * INTERVAL '1 millisecond', now(), a::text, 90000, 0.01, "
        "'buy' FROM unnest(ARRAY[10, 20, 40]) a",
        T0,
    )
    try:
        server.rest_down = True
        assert await tower_backfill("--venue", "binance", "--rest-url", rest) == 1
        gap = await conn.fetchrow(GAP_SQL)
        assert (gap["resolution"], gap["backfilled"], gap["resolved_at"]) == (None, None, None)
        server.rest_down = False
        assert await tower_backfill("--venue", "binance", "--rest-url", rest) == 0
        assert await tower_backfill("--venue", "binance", "--rest-url", rest) == 0  # nothing left: no-op
    finally:
        await server.stop()
    ids = await stored_ids(conn, "binance")
    assert [a for a, _ in ids] == list(range(10, 41))
    assert [a for a, source in ids if source == "ws"] == [10, 20, 40]
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"]) == ("backfilled", 28)  # 29 missing, one already stored
    assert gap["resolved_at"] is not None


async def test_bybit_gets_what_its_last_1000_trades_hold_and_says_partial(conn, db_dsn, tmp_path, monkeypatch):
    env(monkeypatch, db_dsn, tmp_path)
    server = await BybitServer().start()
    server.history["BTCUSDT"] = [("Buy", "91000", "0.1", T0_MS + i * 10, f"id-{i}") for i in range(1500)]
    # A gap over trades 200..1400 by time: REST keeps only 500..1499 of them.
    window = (T0 + timedelta(milliseconds=2000), T0 + timedelta(milliseconds=14000))
    await conn.execute(INSERT_GAP, "bybit", "BTCUSDT", "publicTrade", None, None, None, *window, "reconnect")
    try:
        assert await tower_backfill("--venue", "bybit", "--rest-url", server.rest_url) == 0
    finally:
        await server.stop()
    got = await conn.fetch("SELECT trade_id, source FROM ops.raw_trades ORDER BY ts")
    assert [r["trade_id"] for r in got] == [f"id-{i}" for i in range(500, 1401)]
    assert {r["source"] for r in got} == {"rest"}
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"]) == ("partial", 901)
    assert gap["resolved_at"] is not None  # nothing more can be had: done, said so


async def test_a_hyperliquid_gap_stays_open_as_unavailable(conn, db_dsn, tmp_path, monkeypatch):
    env(monkeypatch, db_dsn, tmp_path)
    await conn.execute(INSERT_GAP, "hyperliquid", "BTC", "trades", None, None, None, T0, T0, "reconnect")
    assert await tower_backfill() == 0
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"], gap["resolved_at"]) == ("unavailable", 0, None)
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 0


def test_okx_counts_aggregated_pushes_and_records_only_real_id_jumps():
    """A push aggregating `count` trades carries the last id: 1000, then 1003 with count 3, is contiguous;
    then 1010 (count 1) misses 1004..1009."""
    venue = Okx(["BTC-USDT-SWAP"], contract_sizes={"BTC-USDT-SWAP": 0.01})
    now = datetime.now(UTC)

    def push(trade_id: str, count: int) -> list:
        frame = okx_trade("BTC-USDT-SWAP", trade_id, "91000.5", "3", "buy", T0_MS + int(trade_id))
        frame["data"][0]["count"] = str(count)
        return venue.parse(orjson.dumps(frame), now).rows

    assert [type(r).__name__ for r in push("1000", 1) + push("1003", 3)] == ["Trade", "Trade"]
    gap, trade = push("1010", 1)
    assert (gap.from_id, gap.to_id, gap.missing, gap.cause, gap.stream) == (1003, 1010, 6, "id_jump", "trades")
    assert trade.trade_id == "1010"


async def test_ingest_keeps_streaming_while_the_rest_is_down_and_fills_the_gap_when_it_returns(conn, db_dsn, tmp_path):
    server = await BinanceServer().start()
    server.history["BTCUSDT"] = binance_history(1, 30)
    server.rest_down = True
    venue = Binance(["BTCUSDT"], ws_url=server.root, rest_url=server.root.replace("ws://", "http://"), derivs=False)
    try:
        async with running(db_dsn, [venue], tmp_path, backfill_every_s=0.1) as run:
            await server.wait_subscribed("btcusdt@aggTrade")
            for a in (1, 10, 11, 12):
                await server.publish(server.history["BTCUSDT"][a - 1])
            await server.wait_until(lambda: any("aggTrades" in p for p in server.rest_requests))
            await server.publish(server.history["BTCUSDT"][12])  # a=13: the stream goes on meanwhile
            assert await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 5) == 5
            assert await conn.fetchval(RESOLVED) == 0
            server.rest_down = False
            assert await wait_until(conn, RESOLVED, 1, within_s=30) == 1
            await run.finish()
    finally:
        await server.stop()
    assert [a for a, _ in await stored_ids(conn, "binance")] == list(range(1, 14))
    gap = await conn.fetchrow(GAP_SQL)
    assert (gap["resolution"], gap["backfilled"]) == ("backfilled", 8)
