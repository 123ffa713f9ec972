"""Bybit v5 linear depth books (orderbook.200) end to end: the loopback server speaks the venue's snapshot + delta
protocol, the connector keeps the book, and the samples in ops.raw_book_depth carry the exact bands of the book the
server holds; a dropped delta or a crossed book is a recorded break, the connector resubscribes and is right again."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.depth import DepthConfig
from ingest.sim.bybit_server import BybitServer
from ingest.venues.bybit import DEPTH_TOPIC, Bybit
from tests.support.ingest_helpers import running, wait_until

T0 = int(datetime(2026, 12, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)
GOLDEN = Path(__file__).parent / "golden" / "bybit"

# mid 100.00. Bids 5, 20, 40, 90, 200 bps from mid; asks 5, 20, 30, 90, 150 bps.
BIDS = {"99.95": "10", "99.80": "20", "99.60": "5", "99.10": "100", "98.00": "1000"}
ASKS = {"100.05": "4", "100.20": "10", "100.30": "50", "100.90": "2", "101.50": "3"}
NOTIONAL = 1000.0
BANDS = ("bid_10bps", "ask_10bps", "bid_25bps", "ask_25bps", "bid_50bps", "ask_50bps", "bid_100bps", "ask_100bps")
SQL = f"SELECT mid, {', '.join(BANDS)}, buy_slip_bps, sell_slip_bps, reach_bps, bid_levels, ask_levels, ts"


def known_book_row() -> tuple:
    """The figures of BIDS/ASKS, worked out by hand (notional = price x size)."""
    bid = (99.95 * 10, 99.95 * 10 + 99.80 * 20, 99.95 * 10 + 99.80 * 20 + 99.60 * 5)
    ask = (100.05 * 4, 100.05 * 4 + 100.20 * 10, 100.05 * 4 + 100.20 * 10 + 100.30 * 50)
    bands = (bid[0], ask[0], bid[1], ask[1], bid[2], ask[2], bid[2] + 99.10 * 100, ask[2] + 100.90 * 2)
    buy_avg = NOTIONAL / (4 + (NOTIONAL - 100.05 * 4) / 100.20)  # 4 @ 100.05, the rest @ 100.20
    sell_avg = NOTIONAL / (10 + (NOTIONAL - 99.95 * 10) / 99.80)
    return (100.0, *bands, (buy_avg - 100) / 100 * 1e4, (100 - sell_avg) / 100 * 1e4, 150.0, 5, 5)


def venue(server: BybitServer) -> Bybit:
    v = Bybit(["BTCUSDT"], ws_url=server.url, derivs=False)
    v.configure_depth(DepthConfig(sample_s=0.0, slippage_notional=NOTIONAL))  # every update is sampled
    return v


async def depth_rows(conn) -> list[tuple]:
    rows = await conn.fetch(f"{SQL} FROM ops.raw_book_depth WHERE venue = 'bybit' ORDER BY ts")
    return [tuple(r.values()) for r in rows]


def figures(row: tuple) -> tuple:
    return row[:-1]


@asynccontextmanager
async def subscribed_to_known_book(conn, db_dsn, tmp_path, u: int):
    """The loopback venue holding BIDS/ASKS at update id `u`, ingest running against it, the first sample stored."""
    server = await BybitServer().start()
    server.set_book("BTCUSDT", BIDS, ASKS, T0, u=u)
    try:
        async with running(db_dsn, [venue(server)], tmp_path):
            await server.wait_subscribed(f"{DEPTH_TOPIC}.BTCUSDT")
            assert await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 1) == 1
            yield server
    finally:
        await server.stop()


async def test_known_book_then_delta_then_dropped_delta_break_and_resync(conn, db_dsn, tmp_path):
    async with subscribed_to_known_book(conn, db_dsn, tmp_path, u=1000) as server:
        # a delta: the best bid goes, a new one at 99.90 (10 bps) comes
        moved = {k: v for k, v in BIDS.items() if k != "99.95"} | {"99.90": "7"}
        await server.depth_update("BTCUSDT", moved, ASKS, T0 + 100)
        assert await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 2) == 2
        # u 1002 never arrives; 1003 does: a break, the book is dropped and resubscribed
        server.drop_next_delta("BTCUSDT")
        after = moved | {"99.85": "3"}
        await server.depth_update("BTCUSDT", after, ASKS, T0 + 200)
        final = after | {"99.10": "0.5"}
        await server.depth_update("BTCUSDT", final, ASKS | {"100.05": "1"}, T0 + 300)
        await wait_until(conn, "SELECT count(*) FROM ops.feed_gaps WHERE stream = 'depth'", 1)
        assert await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 3) == 3
    rows = await depth_rows(conn)
    assert figures(rows[0]) == pytest.approx(known_book_row())
    assert rows[0][-1] == datetime.fromtimestamp(T0 / 1000, UTC)  # venue time: the snapshot's cts
    # after the delta: the best bid is 99.90 x 7, mid (99.90 + 100.05) / 2
    assert rows[1][0] == pytest.approx(99.975) and rows[1][1] == pytest.approx(99.90 * 7)
    assert rows[1][-1] == datetime.fromtimestamp((T0 + 100) / 1000, UTC)
    # the delta after the hole was not applied; the fresh snapshot shows the server's book exactly
    assert server.depth_subscribes == 2
    mid = (99.90 + 100.05) / 2
    assert rows[2][0] == pytest.approx(mid)
    assert rows[2][1] == pytest.approx(99.90 * 7)  # 10 bps of 99.975 reaches down to 99.875 only
    assert rows[2][3] == pytest.approx(99.90 * 7 + 99.85 * 3 + 99.80 * 20)  # 25 bps: down to 99.725
    assert rows[2][2] == pytest.approx(100.05 * 1)
    assert rows[2][7] == pytest.approx(99.90 * 7 + 99.85 * 3 + 99.80 * 20 + 99.60 * 5 + 99.10 * 0.5)
    assert rows[2][-1] == datetime.fromtimestamp((T0 + 300) / 1000, UTC)
    gaps = await conn.fetch("SELECT symbol, stream, cause, from_id, to_id FROM ops.feed_gaps WHERE venue = 'bybit'")
    assert [tuple(g) for g in gaps] == [("BTCUSDT", "depth", "seq_break", 1001, 1003)]
    l1 = await conn.fetchval("SELECT count(*) FROM ops.raw_book_l1")
    assert l1 == 0  # orderbook.1 is its own topic: the depth book never writes L1 rows


async def test_crossed_book_is_a_break_and_resubscribed_and_a_restart_snapshot_resets(conn, db_dsn, tmp_path):
    async with subscribed_to_known_book(conn, db_dsn, tmp_path, u=50) as server:
        nan = {"s": "BTCUSDT", "b": [["NaN", "1"]], "a": [], "u": 51, "seq": 1}
        topic = f"{DEPTH_TOPIC}.BTCUSDT"
        await server.publish_raw(topic, orjson.dumps({"topic": topic, "type": "delta", "ts": T0, "data": nan}).decode())
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 1)
        await server.send_crossed("BTCUSDT", T0 + 100)  # u 51 after 50: applied, a bid at the best ask
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 2)  # the snapshot after resubscribing
        # a venue-side restart: u starts again at 1 and the book is replaced
        server.depth["BTCUSDT"].bids = {"99.00": "1"}
        await server.restart_depth("BTCUSDT", T0 + 200)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 3)
        await server.depth_update("BTCUSDT", {"99.00": "1", "99.50": "2"}, ASKS, T0 + 300)  # u = 2: in order
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 4)
    rows = await depth_rows(conn)
    assert [figures(r) for r in rows[:2]] == [pytest.approx(known_book_row())] * 2
    assert rows[1][-1] == datetime.fromtimestamp((T0 + 100) / 1000, UTC)
    assert server.depth_subscribes == 2
    mid = (99.00 + 100.05) / 2
    assert rows[2][0] == pytest.approx(mid) and rows[2][-3:-1] == (1, 5)  # only the restart snapshot's book
    assert rows[2][-4] == pytest.approx((mid - 99.00) / mid * 1e4)  # reach: the shorter side, the bids
    assert rows[3][0] == pytest.approx((99.50 + 100.05) / 2) and rows[3][-3:-1] == (2, 5)
    gaps = await conn.fetch("SELECT stream, cause FROM ops.feed_gaps WHERE venue = 'bybit'")
    assert [tuple(g) for g in gaps] == [("depth", "resync")]  # the restart itself is no break
    reason = await conn.fetchval("SELECT reason FROM ops.rejected_messages")
    assert reason.startswith("invalid: data.b.0.0")


def test_documented_frames_give_the_documented_book():
    """tests/golden/bybit/orderbook_depth.jsonl (Bybit's documented snapshot and delta, see the README there)."""
    bybit = Bybit(["BTCUSDT"])
    bybit.configure_depth(DepthConfig(sample_s=0.0))  # the default standard order: 100,000 USDT
    recv = datetime(2026, 12, 2, tzinfo=UTC)
    snapshot, delta, repeat, jump = [bybit.parse(line, recv) for line in (GOLDEN / "orderbook_depth.jsonl").open()]
    bids = [(17440.00, 40.833), (17439.50, 0.513), (17416.00, 6.156), (17415.50, 32.268)]
    asks = [(17440.50, 78.815), (17441.00, 8.858), (17464.50, 4.901), (17465.00, 5.744)]
    mid = 17440.25  # 10 bps: 17422.81 .. 17457.69; 25 bps: 17396.65 .. 17483.85 (the whole book)
    (row,) = snapshot.rows
    bands = (row.bid_10bps, row.ask_10bps, row.bid_25bps, row.ask_25bps, row.bid_100bps, row.ask_100bps)
    whole = (sum(p * q for p, q in bids), sum(p * q for p, q in asks))
    assert bands == pytest.approx((*(sum(p * q for p, q in side[:2]) for side in (bids, asks)), *whole, *whole))
    assert row.mid == mid and row.ts == datetime.fromtimestamp(1671179923.028, UTC)  # no cts in this example
    assert row.reach_bps == pytest.approx(24.75 / mid * 1e4) and (row.bid_levels, row.ask_levels) == (4, 4)
    # 100,000 fills at the best ask / bid alone (78.815 x 17440.50 is 1.37 million)
    assert (row.buy_slip_bps, row.sell_slip_bps) == pytest.approx((0.25 / mid * 1e4, 0.25 / mid * 1e4))
    (row,) = delta.rows  # 17440.50 becomes 78.857, 17442.00 x 1.510 is new
    assert row.ask_10bps == pytest.approx(17440.50 * 78.857 + 17441.00 * 8.858 + 17442.00 * 1.510)
    assert (row.bid_levels, row.ask_levels) == (4, 5)
    assert repeat.rows == [] and repeat.live  # the same u again: a duplicate
    (gap,) = jump.rows  # u 13079595 after 13079593: one delta missed
    assert (gap.stream, gap.cause, gap.from_id, gap.to_id) == ("depth", "seq_break", 13079593, 13079595)
    assert jump.resync == ["BTCUSDT"]
    frames = [orjson.loads(f) for f in bybit.depth_resync("BTCUSDT")]
    assert [(f["op"], f["args"]) for f in frames] == [
        ("unsubscribe", ["orderbook.200.BTCUSDT"]),
        ("subscribe", ["orderbook.200.BTCUSDT"]),
    ]


def test_depth_topic_only_with_depth_on_and_bad_frames_are_rejected():
    plain = Bybit(["BTCUSDT"], derivs=False)
    assert [t for r in plain.routes() for t in r.streams] == ["publicTrade.BTCUSDT", "orderbook.1.BTCUSDT"]
    bybit = Bybit(["BTCUSDT"], derivs=False)
    bybit.configure_depth(DepthConfig(sample_s=0.0))
    assert [t for r in bybit.routes() for t in r.streams][-1] == "orderbook.200.BTCUSDT"
    recv = datetime(2026, 12, 2, tzinfo=UTC)
    snapshot = {"topic": "orderbook.200.BTCUSDT", "type": "snapshot", "ts": T0, "cts": T0}
    good = snapshot | {"data": {"s": "BTCUSDT", "b": [["99", "1"]], "a": [["101", "1"]], "u": 5, "seq": 9}}
    assert len(bybit.parse(orjson.dumps(good), recv).rows) == 1
    bad = [
        {"data": {"s": "BTCUSDT", "b": [["NaN", "1"]], "a": [], "u": 6}, "type": "delta"},
        {"data": {"s": "BTCUSDT", "b": [["99", "-1"]], "a": [], "u": 6}, "type": "delta"},
        {"data": {"s": "BTCUSDT", "b": "none", "a": [], "u": 6}, "type": "delta"},
        {"data": {"s": "ETHUSDT", "b": [], "a": [], "u": 6}, "type": "delta"},
    ]
    reasons = [bybit.parse(orjson.dumps(snapshot | b), recv).rows[0].reason for b in bad]
    assert [r.split(":")[0] for r in reasons] == ["invalid", "invalid", "invalid", "symbol_mismatch"]
    assert reasons[0].startswith("invalid: data.b.0.0") and reasons[1].startswith("invalid: data.b.0.1")
    after = snapshot | {"type": "delta", "data": {"s": "BTCUSDT", "b": [["99.5", "2"]], "a": [], "u": 6}}
    (row,) = bybit.parse(orjson.dumps(after), recv).rows  # the book goes on: u 6 follows 5
    assert row.mid == 100.25


def test_levels_beyond_the_subscribed_200_are_never_measured():
    bybit = Bybit(["BTCUSDT"], derivs=False)
    bybit.configure_depth(DepthConfig(sample_s=0.0))
    recv = datetime(2026, 12, 2, tzinfo=UTC)
    bids = [[f"{1000 - 0.5 * i:.1f}", "1"] for i in range(200)]
    asks = [[f"{1000.5 + 0.5 * i:.1f}", "1"] for i in range(200)]
    data = {"s": "BTCUSDT", "b": bids, "a": asks, "u": 1}
    snapshot = {"topic": "orderbook.200.BTCUSDT", "type": "snapshot", "ts": T0, "cts": T0, "data": data}
    (row,) = bybit.parse(orjson.dumps(snapshot), recv).rows
    assert (row.bid_levels, row.ask_levels) == (200, 200)
    # two better bids come in: the venue's 200-level window now ends two levels nearer; the far two are stale
    delta = snapshot | {"type": "delta", "data": data | {"b": [["1000.1", "1"], ["1000.2", "1"]], "a": [], "u": 2}}
    (row,) = bybit.parse(orjson.dumps(delta), recv).rows
    assert (row.bid_levels, row.ask_levels) == (200, 200)
    mid = (1000.2 + 1000.5) / 2
    assert row.reach_bps == pytest.approx((mid - (1000 - 0.5 * 197)) / mid * 1e4)  # the 200th bid, not the 202nd
