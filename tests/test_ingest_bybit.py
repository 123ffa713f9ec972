"""Bybit v5 linear connector against a loopback server speaking Bybit's public stream, into the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson

from ingest.sim.bybit_server import BybitServer, liquidation, orderbook, public_trade, ticker
from ingest.venues.bybit import ARGS_PER_FRAME, Bybit
from tests.support.ingest_helpers import running, wait_until


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


T0 = ms(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))


async def serve(idle_timeout_s: float | None = None) -> BybitServer:
    return await BybitServer(idle_timeout_s).start()


async def subscribed(server: BybitServer, symbols: list[str], kinds=("publicTrade", "orderbook.1")) -> None:
    for s in symbols:
        for kind in kinds:
            await server.wait_subscribed(f"{kind}.{s}")


async def test_trades_books_tickers_and_liquidations_land(conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Bybit(["BTCUSDT"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTCUSDT"], ("publicTrade", "orderbook.1", "tickers", "allLiquidation"))
            await server.publish(
                public_trade(
                    "BTCUSDT",
                    [("Buy", "91000.5", "0.25", T0, "a-1"), ("Sell", "91000.0", "1.5", T0 + 3, "a-2")],
                    T0 + 5,
                )
            )
            await server.publish(public_trade("BTCUSDT", [("Sell", "91000.0", "1.5", T0 + 3, "a-2")], T0 + 6))  # dup
            await server.publish(orderbook("BTCUSDT", "snapshot", ("91000.0", "3"), ("91000.5", "2"), 100, T0 + 10))
            await server.publish(orderbook("BTCUSDT", "delta", None, ("91000.4", "1"), 101, T0 + 11))
            # Bybit re-sends an unchanged level-1 book every 3 s with the same u.
            await server.publish(orderbook("BTCUSDT", "snapshot", ("91000.0", "3"), ("91000.4", "1"), 101, T0 + 3011))
            await server.publish(
                ticker(
                    "BTCUSDT",
                    T0 + 20,
                    markPrice="91010.0",
                    indexPrice="91000.0",
                    fundingRate="0.0001",
                    nextFundingTime=str(T0 + 3600_000),
                    openInterest="52000.5",
                    fundingIntervalHour="4",
                    lastPrice="91005",
                )
            )
            await server.publish(ticker("BTCUSDT", T0 + 21, kind="delta", lastPrice="91006"))  # nothing of ours
            await server.publish(ticker("BTCUSDT", T0 + 22, kind="delta", openInterest="52010"))
            await server.publish(liquidation("BTCUSDT", "Buy", "90900", "0.8", T0 + 30))  # a long liquidated
            await wait_until(conn, "SELECT count(*) FROM ops.raw_liquidations", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 2)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 2)
    finally:
        await server.stop()
    trades = await conn.fetch("SELECT trade_id, price, qty, side, ts FROM ops.raw_trades ORDER BY ts")
    assert [(r["trade_id"], r["price"], r["qty"], r["side"], ms(r["ts"])) for r in trades] == [
        ("a-1", 91000.5, 0.25, "buy", T0),
        ("a-2", 91000.0, 1.5, "sell", T0 + 3),
    ]
    books = await conn.fetch("SELECT bid_px, bid_qty, ask_px, ask_qty, update_id, ts FROM ops.raw_book_l1 ORDER BY ts")
    assert [(*tuple(r.values())[:5], ms(r["ts"])) for r in books] == [
        (91000.0, 3.0, 91000.5, 2.0, 100, T0 + 10),
        (91000.0, 3.0, 91000.4, 1.0, 101, T0 + 11),
    ]
    derivs = await conn.fetch("SELECT * FROM ops.raw_derivs ORDER BY ts")
    # A delta changes only what it names: each row carries the merged state, so mark and index stay paired.
    assert [
        (r["mark_px"], r["index_px"], r["funding_rate"], r["funding_interval"], r["open_interest"]) for r in derivs
    ] == [
        (91010.0, 91000.0, 0.0001, timedelta(hours=4), 52000.5),
        (91010.0, 91000.0, 0.0001, timedelta(hours=4), 52010.0),
    ]
    assert ms(derivs[0]["next_funding_ts"]) == T0 + 3600_000
    liq = await conn.fetchrow("SELECT side, price, qty FROM ops.raw_liquidations")
    assert tuple(liq) == ("sell", 90900.0, 0.8)  # the forced order that closes a long sells
    assert (
        await conn.fetchval(
            "SELECT contract_size FROM ops.instruments WHERE venue = 'bybit' AND symbol = 'BTCUSDT' AND active"
        )
        == 1.0
    )


async def test_quiet_connection_survives_by_pinging(conn, db_dsn, tmp_path):
    server = await serve(idle_timeout_s=0.6)
    try:
        async with running(db_dsn, [Bybit(["ETHUSDT"], ws_url=server.url, heartbeat_s=0.2)], tmp_path):
            await subscribed(server, ["ETHUSDT"])
            for i in range(4):
                await server.publish(public_trade("ETHUSDT", [("Buy", "3050", "1", T0 + i, f"t{i}")], T0 + i))
                await asyncio.sleep(0.5)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 4)
    finally:
        await server.stop()
    assert server.idle_closes == 0 and server.pings >= 3 and server.connections == 1


async def test_without_pings_the_venue_drops_us_and_we_resubscribe(conn, db_dsn, tmp_path):
    server = await serve(idle_timeout_s=0.3)
    try:
        async with running(db_dsn, [Bybit(["ETHUSDT"], ws_url=server.url, heartbeat_s=3600)], tmp_path):
            await subscribed(server, ["ETHUSDT"])
            await wait_until(
                conn, "SELECT count(*) FROM ops.connection_events WHERE event = 'disconnect'", lambda n: n >= 1
            )
            await subscribed(server, ["ETHUSDT"])
            await server.publish(public_trade("ETHUSDT", [("Sell", "3050", "2", T0, "x")], T0))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
    finally:
        await server.stop()
    first = await conn.fetchrow(
        "SELECT code, reason FROM ops.connection_events WHERE event = 'disconnect' ORDER BY ts LIMIT 1"
    )
    assert tuple(first) == (1000, "idle timeout")


def test_subscribe_requests_stay_within_ten_args():
    venue = Bybit([f"C{i}USDT" for i in range(30)])
    (route,) = venue.routes()
    assert len(route.streams) == 120
    args = [orjson.loads(f)["args"] for f in route.subscribe]
    assert max(len(a) for a in args) == ARGS_PER_FRAME and sum(len(a) for a in args) == 120
    assert len(Bybit([f"C{i}USDT" for i in range(60)], max_topics=200).routes()) == 2


async def test_bad_frames_are_quarantined_and_good_ones_kept(conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Bybit(["BTCUSDT"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTCUSDT"])
            await server.broadcast_raw("{not json")
            doge = public_trade("DOGEUSDT", [("Buy", "0.1", "5", T0, "d")], T0)
            await server.broadcast_raw(orjson.dumps(doge).decode())
            await server.publish(
                public_trade(
                    "BTCUSDT",
                    [
                        ("Buy", "NaN", "1", T0, "n1"),
                        ("Hold", "91000", "1", T0, "n2"),
                        ("Buy", "91000", "1", T0 + 1, "ok"),
                    ],
                    T0 + 1,
                )
            )
            await server.publish(orderbook("BTCUSDT", "snapshot", ("91001", "1"), ("91000", "1"), 7, T0 + 2))  # crossed
            await server.publish(ticker("BTCUSDT", T0 + 3, markPrice="-5"))
            await server.publish(liquidation("BTCUSDT", "Sell", "91000", "0", T0 + 4))
            await server.broadcast_raw('{"success":false,"ret_msg":"error:handler not found,topic:x","op":"subscribe"}')
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 7)
    finally:
        await server.stop()
    rows = await conn.fetch("SELECT stream, reason FROM ops.rejected_messages")
    assert sorted(f"{r['stream']} {r['reason'].split(':')[0]}" for r in rows) == sorted(
        [
            "None malformed_json",
            "publicTrade unknown_symbol",
            "publicTrade invalid",
            "publicTrade invalid",
            "orderbook.1 crossed_book",
            "tickers invalid",
            "allLiquidation invalid",
        ]
    )
    error = await conn.fetchval("SELECT reason FROM ops.connection_events WHERE event = 'error'")
    assert error.startswith("subscribe refused: error:handler not found")


def book_rows(venue: Bybit, *frames: dict) -> list[tuple]:
    now = datetime.now(UTC)
    rows = []
    for f in frames:
        parsed = venue.parse(orjson.dumps(f), now)
        rows += [(r.bid_px, r.bid_qty, r.ask_px, r.ask_qty, r.update_id) for r in parsed.rows]
    return rows


def test_a_delta_that_deletes_the_best_bid_and_names_the_next_keeps_the_book():
    # As the live venue sends it: the old best bid with size "0" and the new best bid in one message.
    v = Bybit(["BTCUSDT"])
    snapshot = {
        "topic": "orderbook.1.BTCUSDT",
        "type": "snapshot",
        "ts": T0,
        "cts": T0 - 2,
        "data": {"s": "BTCUSDT", "b": [["91000.0", "3.1"]], "a": [["91000.1", "2.0"]], "u": 500, "seq": 9},
    }
    delta = {
        "topic": "orderbook.1.BTCUSDT",
        "type": "delta",
        "ts": T0 + 10,
        "cts": T0 + 8,
        "data": {"s": "BTCUSDT", "b": [["91000.0", "0"], ["90999.9", "1.5"]], "a": [], "u": 501, "seq": 10},
    }
    new_first = {
        "topic": "orderbook.1.BTCUSDT",
        "type": "delta",
        "ts": T0 + 20,
        "cts": T0 + 18,
        "data": {"s": "BTCUSDT", "b": [], "a": [["91000.2", "4"], ["91000.1", "0"]], "u": 502, "seq": 11},
    }
    assert book_rows(v, snapshot, delta, new_first) == [
        (91000.0, 3.1, 91000.1, 2.0, 500),
        (90999.9, 1.5, 91000.1, 2.0, 501),
        (90999.9, 1.5, 91000.2, 4.0, 502),
    ]


def test_a_snapshot_resets_the_book_even_when_its_update_id_went_down():
    v = Bybit(["BTCUSDT"])
    first = orderbook("BTCUSDT", "snapshot", ("91000.0", "3"), ("91000.5", "2"), 90_000, T0)
    again = orderbook("BTCUSDT", "snapshot", ("91000.0", "3"), ("91000.5", "2"), 90_000, T0 + 3000)  # 3 s re-send
    restarted = orderbook("BTCUSDT", "snapshot", ("91010.0", "1"), ("91010.5", "1"), 17, T0 + 5000)
    delta = orderbook("BTCUSDT", "delta", ("91010.1", "2"), None, 18, T0 + 5001)
    stale = orderbook("BTCUSDT", "delta", ("91011.0", "2"), None, 18, T0 + 5002)  # repeats u 18
    assert book_rows(v, first, again, restarted, delta, stale) == [
        (91000.0, 3.0, 91000.5, 2.0, 90_000),
        (91010.0, 1.0, 91010.5, 1.0, 17),
        (91010.1, 2.0, 91010.5, 1.0, 18),
    ]


async def test_after_a_reconnect_the_lower_numbered_snapshot_is_stored(conn, db_dsn, tmp_path):
    server = await serve()
    try:
        async with running(db_dsn, [Bybit(["BTCUSDT"], ws_url=server.url)], tmp_path):
            await subscribed(server, ["BTCUSDT"])
            await server.publish(orderbook("BTCUSDT", "snapshot", ("91000.0", "3"), ("91000.5", "2"), 80_000, T0))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 1)
            await server.drop_all()  # a venue-side restart: numbering starts again
            await subscribed(server, ["BTCUSDT"])
            await server.publish(orderbook("BTCUSDT", "snapshot", ("91020.0", "1"), ("91020.5", "1"), 3, T0 + 60_000))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 2)
    finally:
        await server.stop()
    rows = await conn.fetch("SELECT bid_px, update_id FROM ops.raw_book_l1 ORDER BY ts")
    assert [tuple(r) for r in rows] == [(91000.0, 80_000), (91020.0, 3)]
