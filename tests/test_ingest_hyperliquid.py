"""Hyperliquid connector against a loopback server that enforces the idle rule, into the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from ingest.sim.hyperliquid_server import HyperliquidServer, bbo, trade
from ingest.venues.hyperliquid import Hyperliquid
from tests.support.ingest_helpers import running, wait_until

T0 = int(datetime(2026, 11, 25, 6, 0, tzinfo=UTC).timestamp() * 1000)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


async def serve(idle_timeout_s: float = 60.0) -> HyperliquidServer:
    return await HyperliquidServer(idle_timeout_s=idle_timeout_s).start()


async def subscribed(server: HyperliquidServer, coins: list[str], clients: int = 1) -> None:
    for coin in coins:
        await server.wait_subscribed("trades", coin, clients)
        await server.wait_subscribed("bbo", coin, clients)


async def test_trades_and_bbo_land_row_by_row(conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Hyperliquid(["BTC", "ETH"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTC", "ETH"])
            await server.publish(
                "trades",
                "BTC",
                [trade("BTC", "B", "91000.5", "0.1", T0, 11), trade("BTC", "A", "91000.0", "0.3", T0 + 1, 12)],
            )
            await server.publish("trades", "ETH", [trade("ETH", "A", "3050.1", "4.2", T0 + 2, 13)])
            await server.publish("bbo", "BTC", bbo("BTC", T0 + 3, ("91000.0", "1.5"), ("91001.0", "2.5")))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 3)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 1)
    finally:
        await server.stop()
    trades = await conn.fetch("SELECT * FROM ops.raw_trades ORDER BY ts")
    assert [(r["venue"], r["symbol"], r["trade_id"], r["price"], r["qty"], r["side"], ms(r["ts"])) for r in trades] == [
        ("hyperliquid", "BTC", "11", 91000.5, 0.1, "buy", T0),  # B: the bid side took liquidity
        ("hyperliquid", "BTC", "12", 91000.0, 0.3, "sell", T0 + 1),
        ("hyperliquid", "ETH", "13", 3050.1, 4.2, "sell", T0 + 2),
    ]
    book = await conn.fetchrow("SELECT * FROM ops.raw_book_l1")
    assert (
        book["symbol"],
        book["bid_px"],
        book["bid_qty"],
        book["ask_px"],
        book["ask_qty"],
        book["update_id"],
        ms(book["ts"]),
    ) == ("BTC", 91000.0, 1.5, 91001.0, 2.5, None, T0 + 3)


async def test_quiet_feed_survives_the_idle_rule_by_pinging(conn, db_dsn, tmp_path):
    server = await serve(idle_timeout_s=0.6)
    venue = Hyperliquid(["BTC"], ws_url=server.url, heartbeat_s=0.2)
    try:
        async with running(db_dsn, [venue], tmp_path):
            await subscribed(server, ["BTC"])
            for i in range(4):  # a quiet coin: one trade every 0.5 s, the server's limit is 0.6 s of silence
                await server.publish("trades", "BTC", [trade("BTC", "B", "91000", "1", T0 + i, 100 + i)])
                await asyncio.sleep(0.5)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 4)
    finally:
        await server.stop()
    assert server.idle_closes == 0 and server.pings >= 3 and server.connections == 1
    assert await conn.fetchval("SELECT count(*) FROM ops.connection_events WHERE event = 'reconnect_attempt'") == 0


async def test_idle_close_is_recorded_then_resubscribed(conn, db_dsn, tmp_path):
    server = await serve(idle_timeout_s=0.3)
    venue = Hyperliquid(["BTC"], ws_url=server.url, heartbeat_s=3600)  # never pings: the server will drop us
    try:
        async with running(db_dsn, [venue], tmp_path):
            await subscribed(server, ["BTC"])
            await server.publish("trades", "BTC", [trade("BTC", "B", "91000", "1", T0, 1)])
            await wait_until(
                conn, "SELECT count(*) FROM ops.connection_events WHERE event = 'disconnect'", lambda n: n >= 1
            )
            await subscribed(server, ["BTC"])  # the new connection subscribed again
            await server.publish("trades", "BTC", [trade("BTC", "A", "91001", "2", T0 + 1, 2)])
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 2)
    finally:
        await server.stop()
    assert server.idle_closes >= 1 and server.connections >= 2
    first = await conn.fetchrow(
        "SELECT code, reason FROM ops.connection_events WHERE event = 'disconnect' ORDER BY ts LIMIT 1"
    )
    assert tuple(first) == (1000, "idle timeout")
    assert await conn.fetchval("SELECT count(*) FROM ops.connection_events WHERE event = 'subscribed'") >= 2
    # Every connection opened with the venue's plain-text greeting: control, never a rejection.
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0
    assert [k for k in venue.counters if k.startswith("rejected")] == []  # nor counted as one (progress logs)


async def test_control_channels_and_bad_input(conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Hyperliquid(["BTC"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTC"])
            await server.broadcast_raw('{"channel":"pong"}')
            await server.broadcast_raw('{"channel":"error","data":"Already subscribed"}')
            await server.broadcast_raw('{"channel":"notification","data":{"notification":"hello"}}')
            await server.broadcast_raw("not json at all")
            await server.publish(
                "trades",
                "BTC",
                [
                    trade("BTC", "B", "91000", "1", T0 + 5, 1),
                    trade("BTC", "B", "91000", "1", T0 + 5, 1),  # repeated by a snapshot: dropped, not stored twice
                    trade("BTC", "X", "91000", "1", T0 + 6, 2),  # unknown side
                    trade("BTC", "B", "-5", "1", T0 + 6, 3),  # negative price
                    trade("BTC", "B", "91000", "0", T0 + 6, 4),  # zero size
                    trade("DOGE", "B", "0.1", "10", T0 + 6, 5),  # unknown coin
                    trade("BTC", "A", "91000", "1", T0 + 1, 6),  # older than what we have
                    trade("BTC", "A", "91002", "3", T0 + 7, 7),
                ],
            )
            await server.publish("bbo", "BTC", bbo("BTC", T0 + 8, ("91003", "1"), ("91002", "1")))
            await server.publish("bbo", "BTC", bbo("BTC", T0 + 9, None, ("91002", "1")))
            await server.publish("bbo", "BTC", bbo("BTC", T0 + 10, ("91001", "1"), ("91002", "1")))
            await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 8)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 1)
    finally:
        await server.stop()
    assert await conn.fetchval("SELECT array_agg(trade_id ORDER BY ts) FROM ops.raw_trades") == ["1", "7"]
    rows = await conn.fetch("SELECT reason, raw, symbol FROM ops.rejected_messages")
    reasons = sorted(r["reason"].split(":")[0] for r in rows)
    assert reasons == sorted(
        [
            "malformed_json",
            "invalid",
            "invalid",
            "invalid",
            "unknown_symbol",
            "out_of_order",
            "crossed_book",
            "one_sided_book",
        ]
    )
    assert "not json at all" in {r["raw"] for r in rows}
    tid3 = [r for r in rows if r["raw"].startswith("{") and orjson.loads(r["raw"]).get("tid") == 3]
    assert tid3 and tid3[0]["symbol"] == "BTC"
    errors = await conn.fetch("SELECT reason FROM ops.connection_events WHERE event = 'error'")
    assert {e["reason"] for e in errors} == {
        "Already subscribed",
        "unknown channel 'notification' (ignored from now on)",
    }


@pytest.mark.parametrize("frame", ['{"channel":"trades","data":{"coin":"BTC"}}', "[1,2,3]"])
async def test_odd_shapes_do_not_kill_the_connector(frame, conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Hyperliquid(["BTC"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTC"])
            await server.broadcast_raw(frame)
            await server.publish("trades", "BTC", [trade("BTC", "B", "91000", "1", T0, 1)])
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 1)
    finally:
        await server.stop()
    assert await conn.fetchval("SELECT raw FROM ops.rejected_messages") == frame
