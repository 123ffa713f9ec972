"""Binance USD-M connector against a loopback server with the 2026 routing, into the real database."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from ingest.sim.binance_server import BinanceServer, agg_trade, book_ticker
from ingest.venues.binance import Binance
from tests.support.ingest_helpers import FAST, running, wait_until


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


T0 = ms(datetime(2026, 11, 25, 6, 0, tzinfo=UTC))


@pytest.fixture
async def server():
    s = await BinanceServer().start()
    yield s
    await s.stop()


async def subscribed(server: BinanceServer, symbols: list[str], clients: int = 1) -> None:
    for s in symbols:
        await server.wait_subscribed(f"{s.lower()}@aggTrade", clients)
        await server.wait_subscribed(f"{s.lower()}@bookTicker", clients)


async def test_trades_and_books_land_row_by_row(server, conn, db_dsn, tmp_path):
    venue = Binance(["BTCUSDT", "ETHUSDT"], ws_url=server.root, derivs=False)
    async with running(db_dsn, [venue], tmp_path) as run:
        await subscribed(server, ["BTCUSDT", "ETHUSDT"])
        before = datetime.now(UTC)
        await server.publish(agg_trade("BTCUSDT", 100, "91234.5", "0.25", T0, buyer_is_maker=True))
        await server.publish(agg_trade("BTCUSDT", 101, "91235.0", "1.5", T0 + 7, buyer_is_maker=False))
        await server.publish(agg_trade("ETHUSDT", 7, "3050.25", "2", T0 + 9, buyer_is_maker=False))
        await server.publish(book_ticker("BTCUSDT", 5000, "91234.4", "3.1", "91234.6", "0.7", T0 + 11))
        await server.publish(book_ticker("ETHUSDT", 6000, "3050.2", "10", "3050.3", "12", T0 + 12))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 3)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 2)
        await run.finish()

    trades = await conn.fetch("SELECT * FROM ops.raw_trades ORDER BY ts")
    got = [(r["venue"], r["symbol"], r["trade_id"], r["price"], r["qty"], r["side"], ms(r["ts"])) for r in trades]
    assert got == [
        ("binance", "BTCUSDT", "100", 91234.5, 0.25, "sell", T0),  # m=true: buyer was maker, aggressor sold
        ("binance", "BTCUSDT", "101", 91235.0, 1.5, "buy", T0 + 7),
        ("binance", "ETHUSDT", "7", 3050.25, 2.0, "buy", T0 + 9),
    ]
    assert all(r["recv_ts"] >= before for r in trades)
    books = await conn.fetch("SELECT * FROM ops.raw_book_l1 ORDER BY ts")
    assert [
        (r["symbol"], r["bid_px"], r["bid_qty"], r["ask_px"], r["ask_qty"], r["update_id"], ms(r["ts"])) for r in books
    ] == [
        ("BTCUSDT", 91234.4, 3.1, 91234.6, 0.7, 5000, T0 + 11),
        ("ETHUSDT", 3050.2, 10.0, 3050.3, 12.0, 6000, T0 + 12),
    ]
    events = await conn.fetch("SELECT event, url, streams FROM ops.connection_events ORDER BY ts")
    subscribed_urls = {(e["url"], tuple(e["streams"])) for e in events if e["event"] == "subscribed"}
    assert subscribed_urls == {
        (f"{server.root}/market/ws", ("btcusdt@aggTrade", "ethusdt@aggTrade")),
        (f"{server.root}/public/ws", ("btcusdt@bookTicker", "ethusdt@bookTicker")),
    }
    assert [e["event"] for e in events].count("disconnect") == 2  # both closed at shutdown, with their code


async def test_venue_clock_ahead_is_recorded_as_negative_lag(server, conn, db_dsn, tmp_path):
    future = ms(datetime.now(UTC)) + 5000
    async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path):
        await subscribed(server, ["BTCUSDT"])
        await server.publish(agg_trade("BTCUSDT", 1, "90000", "1", future, buyer_is_maker=False))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
    lag = await conn.fetchval("SELECT extract(epoch FROM recv_ts - ts) FROM ops.raw_trades")
    assert lag < -3


async def test_aggtrade_id_gap_across_reconnect_goes_to_feed_gaps(server, conn, db_dsn, tmp_path):
    venue = Binance(["BTCUSDT"], ws_url=server.root, derivs=False)
    async with running(db_dsn, [venue], tmp_path):
        await subscribed(server, ["BTCUSDT"])
        for a in (1, 2, 3):
            await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=False))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 3)
        await server.drop_all(1001, "server restart")
        await subscribed(server, ["BTCUSDT"])
        # ids 4..6 were traded while we were away; 3 (already stored) is replayed by the venue
        for a in (3, 7, 8):
            await server.publish(agg_trade("BTCUSDT", a, "90001", "1", T0 + a, buyer_is_maker=True))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 5)
        await wait_until(conn, "SELECT count(*) FROM ops.feed_gaps", 1)

    gaps = await conn.fetch(
        "SELECT venue, symbol, stream, from_id, to_id, missing, cause, resolved_at FROM ops.feed_gaps"
    )
    assert [tuple(g) for g in gaps] == [("binance", "BTCUSDT", "aggTrade", 3, 7, 3, "id_jump", None)]
    assert await conn.fetchval("SELECT array_agg(trade_id ORDER BY ts) FROM ops.raw_trades") == [
        "1",
        "2",
        "3",
        "7",
        "8",
    ]
    events = await conn.fetch("SELECT event, code, reason, attempt, delay_s FROM ops.connection_events ORDER BY ts")
    kinds = [e["event"] for e in events]
    assert kinds.count("connect") == 4  # market and public, twice each
    drops = [e for e in events if e["event"] == "disconnect" and e["code"] == 1001]
    assert {d["reason"] for d in drops} == {"server restart"} and len(drops) == 2
    retries = [e for e in events if e["event"] == "reconnect_attempt"]
    assert len(retries) == 2 and all(r["attempt"] == 1 and 0 < r["delay_s"] <= FAST.backoff_cap_s for r in retries)


async def test_bad_frames_are_quarantined_and_the_connector_keeps_running(server, conn, db_dsn, tmp_path):
    good = agg_trade("BTCUSDT", 10, "90000", "1", T0 + 10, buyer_is_maker=False)
    bad = {
        "malformed_json": '{"e":"aggTrade","s":"BTCUSDT",',
        "missing_field": orjson.dumps({k: v for k, v in good.items() if k != "p"}).decode(),
        "invalid_nan": orjson.dumps({**good, "p": "NaN"}).decode(),
        "invalid_negative": orjson.dumps({**good, "q": "-1"}).decode(),
        "invalid_zero": orjson.dumps({**good, "p": "0"}).decode(),
        "unknown_symbol": orjson.dumps({**good, "s": "XRPUSDT"}).decode(),
        "out_of_order": orjson.dumps({**good, "a": 11, "T": T0 + 5}).decode(),
    }
    crossed = book_ticker("BTCUSDT", 1, "90001", "1", "90000", "1", T0)
    locked = book_ticker("BTCUSDT", 2, "90000", "1", "90000", "1", T0)
    async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path):
        await subscribed(server, ["BTCUSDT"])
        await server.publish(good)
        for text in bad.values():
            await server.publish_raw("btcusdt@aggTrade", text)
        await server.publish(crossed)
        await server.publish(locked)
        await server.publish(agg_trade("BTCUSDT", 11, "90002", "2", T0 + 11, buyer_is_maker=True))
        await server.publish(book_ticker("BTCUSDT", 3, "89999", "1", "90000", "1", T0 + 12))
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 9)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 2)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 1)

    rejected = {r["raw"]: r for r in await conn.fetch("SELECT * FROM ops.rejected_messages")}
    assert set(rejected) == {*bad.values(), orjson.dumps(crossed).decode(), orjson.dumps(locked).decode()}
    reasons = {name: rejected[text]["reason"] for name, text in bad.items()}
    assert reasons["malformed_json"] == "malformed_json"
    assert reasons["missing_field"].startswith("missing_field: p")
    for name in ("invalid_nan", "invalid_negative", "invalid_zero"):
        assert reasons[name].startswith("invalid: "), name
    assert reasons["unknown_symbol"] == "unknown_symbol"
    assert reasons["out_of_order"] == "out_of_order"
    assert rejected[orjson.dumps(crossed).decode()]["reason"] == "crossed_book"
    assert rejected[orjson.dumps(locked).decode()]["reason"] == "crossed_book"
    assert {r["venue"] for r in rejected.values()} == {"binance"}
    assert await conn.fetchval("SELECT array_agg(trade_id ORDER BY ts) FROM ops.raw_trades") == ["10", "11"]


async def test_connected_but_silent_is_stale_and_reconnects(server, conn, db_dsn, tmp_path):
    runtime = replace(FAST, stale_after_s=0.4)
    async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path, runtime=runtime):
        await subscribed(server, ["BTCUSDT"])
        await wait_until(
            conn,
            "SELECT count(*) FROM ops.connection_events WHERE event = 'stale' AND conn_id LIKE '%public%'",
            lambda n: n >= 2,
        )
        await subscribed(server, ["BTCUSDT"])
    assert server.connections >= 3
    stale = await conn.fetch(
        "SELECT e.conn_id, d.code FROM ops.connection_events e JOIN ops.connection_events d "
        "USING (conn_id) WHERE e.event = 'stale' AND d.event = 'disconnect'"
    )
    assert stale and all(r["code"] == 4000 for r in stale)


async def test_rotation_overlaps_then_switches_without_gap_or_duplicate(server, conn, db_dsn, tmp_path):
    runtime = replace(FAST, rotate_after_s=0.3)
    async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path, runtime=runtime):
        await subscribed(server, ["BTCUSDT"])
        a, t_end = 0, time.monotonic() + 30
        rotated = 0
        while rotated < 2 and time.monotonic() < t_end:
            a += 1
            await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=False))
            await server.publish(book_ticker("BTCUSDT", a, "89999", "1", "90000", "1", T0 + a))
            rotated = await conn.fetchval(
                "SELECT count(*) FROM ops.connection_events WHERE event = 'rotate' AND conn_id LIKE '%market%'"
            )
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", a)
    assert rotated >= 2
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == a
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == a
    assert await conn.fetchval("SELECT count(*) FROM ops.feed_gaps") == 0


async def test_symbols_are_sharded_under_the_per_connection_stream_limit(server, conn, db_dsn, tmp_path):
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]
    venue = Binance(symbols, ws_url=server.root, max_streams=2, derivs=False)
    async with running(db_dsn, [venue], tmp_path):
        await subscribed(server, symbols)
        for i, s in enumerate(symbols):
            await server.publish(agg_trade(s, 1, "10", "1", T0 + i, buyer_is_maker=False))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", len(symbols))
    assert server.connections == 6  # 3 on /market, 3 on /public
    # a shard of quiet symbols may go minutes without a trade while books move: more patience there
    assert {r.stale_factor for r in venue.routes() if r.url.endswith("/market/ws")} == {10.0}
    streams = await conn.fetch("SELECT url, streams FROM ops.connection_events WHERE event = 'subscribed'")
    assert all(len(r["streams"]) <= 2 for r in streams)
    assert sorted(s for r in streams if r["url"].endswith("/market/ws") for s in r["streams"]) == sorted(
        f"{s.lower()}@aggTrade" for s in symbols
    )


async def test_unacknowledged_subscribe_is_a_failed_attempt(conn, db_dsn, tmp_path):
    """A server that accepts the socket but never answers SUBSCRIBE: recorded, retried, never fatal."""
    import websockets

    async def mute(ws):
        async for _ in ws:
            pass

    async with websockets.serve(mute, "127.0.0.1", 0) as mute_server:
        root = f"ws://127.0.0.1:{mute_server.sockets[0].getsockname()[1]}"
        runtime = replace(FAST, subscribe_timeout_s=0.2)
        async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=root, derivs=False)], tmp_path, runtime=runtime):
            await wait_until(
                conn, "SELECT count(*) FROM ops.connection_events WHERE event = 'reconnect_attempt'", lambda n: n >= 4
            )
    reasons = await conn.fetch(
        "SELECT code, reason FROM ops.connection_events WHERE event = 'disconnect' AND reason LIKE 'subscribe%'"
    )
    assert reasons and all(r["code"] == 4001 for r in reasons)
    attempts = await conn.fetch(
        "SELECT attempt FROM ops.connection_events WHERE event = 'reconnect_attempt' "
        "AND conn_id LIKE '%market%' ORDER BY ts"
    )
    assert [a["attempt"] for a in attempts][:2] == [1, 2]  # no data ever arrived: the backoff keeps growing


@pytest.fixture
def tls(tmp_path):
    """A throwaway CA-less certificate for 127.0.0.1: (server context, client context trusting it)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl (CLI) is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


async def test_wss_with_certificate_verification(tls, conn, db_dsn, tmp_path):
    server_ctx, client_ctx = tls
    server = await BinanceServer().start(ssl_context=server_ctx)
    try:
        assert server.root.startswith("wss://")
        runtime = replace(FAST, ssl_context=client_ctx)
        async with running(db_dsn, [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path, runtime=runtime):
            await subscribed(server, ["BTCUSDT"])
            await server.publish(agg_trade("BTCUSDT", 1, "91000", "1", T0, buyer_is_maker=False))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
        # and a client that does not trust the certificate refuses it: nothing is ever subscribed
        async with running(db_dsn, [Binance(["ETHUSDT"], ws_url=server.root, derivs=False)], tmp_path / "b"):
            await wait_until(
                conn,
                "SELECT count(*) FROM ops.connection_events WHERE event = 'reconnect_attempt' "
                "AND reason LIKE '%CERTIFICATE_VERIFY_FAILED%'",
                lambda n: n >= 2,
            )
    finally:
        await server.stop()
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM ops.connection_events WHERE event = 'subscribed' "
            "AND 'ethusdt@aggTrade' = ANY(streams)"
        )
        == 0
    )
