"""Binance USD-M full books: the diff-depth stream on /public synced from REST snapshots by Binance's rules,
end to end through the loopback server (WebSocket + REST) into the real database, and the documented
message examples through the adapter."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.depth import DepthConfig
from ingest.sim import demo
from ingest.sim.binance_server import BinanceServer, SimBook, depth_snapshot, depth_update
from ingest.universe import rest_off_notice
from ingest.venues.binance import Binance
from tests.support.ingest_helpers import env, running, wait_until
from tower.cli import main

GOLDEN = Path(__file__).parent / "golden" / "binance"
T0 = int(datetime(2026, 12, 2, 6, 0, tzinfo=UTC).timestamp() * 1000)
SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
NOTIONAL = 1000.0

# mid 100: bids 5, 20, 40, 80, 200 bps away; asks 5, 20, 30, 90, 150 bps away (no level on a band edge)
BIDS = [("99.95", "10"), ("99.8", "20"), ("99.6", "5"), ("99.2", "100"), ("98.0", "1000")]
ASKS = [("100.05", "4"), ("100.2", "10"), ("100.3", "50"), ("100.9", "2"), ("101.5", "3")]


def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


@pytest.fixture
async def server():
    s = await BinanceServer().start()
    s.books[SYMBOL] = SimBook(dict(BIDS), dict(ASKS), last_u=1000, tx_ms=T0, event_ms=T0 + 1)
    yield s
    await s.stop()


def depth_venue(server: BinanceServer, symbols: list[str] | None = None) -> Binance:
    venue = Binance(symbols or [SYMBOL], ws_url=server.root, rest_url=server.rest_url, derivs=False)
    venue.configure_depth(DepthConfig(sample_s=0.2, slippage_notional=NOTIONAL))
    return venue


async def eventually(ready, within_s: float = 10.0) -> None:
    """Waits (does not assert) until `ready()`; the assertions after it say what must hold."""
    for _ in range(round(within_s / 0.02)):
        if ready():
            return
        await asyncio.sleep(0.02)


def same_book(venue: Binance, server: BinanceServer, symbol: str = SYMBOL) -> bool:
    book, truth = venue.depth.book(symbol), server.books[symbol]
    return (
        book.synced
        and book.bids == {float(p): float(q) for p, q in truth.bids.items()}
        and book.asks == {float(p): float(q) for p, q in truth.asks.items()}
    )


async def first_sync(server: BinanceServer, venue: Binance) -> dict:
    """Subscribed, the first diff sent, its snapshot applied: the book in sync. Returns that diff."""
    await server.wait_subscribed(STREAM)
    first = await server.depth_update(SYMBOL, [("99.9", "1")], [], T0 + 100)
    await eventually(lambda: same_book(venue, server))
    assert same_book(venue, server)
    return first


async def resynced_after_a_break(conn, server: BinanceServer, venue: Binance) -> None:
    """One seq_break recorded, a second snapshot fetched, and the book right again."""
    await wait_until(conn, "SELECT count(*) FROM ops.feed_gaps WHERE cause = 'seq_break'", 1)
    await eventually(lambda: same_book(venue, server) and len(server.depth_requests) == 2)
    assert same_book(venue, server)


DEPTH_SQL = (
    "SELECT mid, bid_10bps, ask_10bps, bid_25bps, ask_25bps, bid_50bps, ask_50bps, bid_100bps, ask_100bps, "
    "buy_slip_bps, sell_slip_bps, reach_bps, bid_levels, ask_levels FROM ops.raw_book_depth "
    "WHERE venue = 'binance' AND symbol = $1 AND ts = $2"
)


async def test_a_known_book_is_stored_with_exact_bands_slippage_and_reach(server, conn, db_dsn, tmp_path):
    venue = depth_venue(server)
    assert [r.streams for r in venue.routes() if r.name.startswith("public-depth")] == [(STREAM,)]
    async with running(db_dsn, [venue], tmp_path) as run:
        await server.wait_subscribed(STREAM)
        # The first diff starts the sync: the snapshot is asked for then, and the diff (U <= lastUpdateId
        # <= u) applied on it. 99.95 grows to 12, 100.2 goes, 100.08 x 6 comes.
        await server.depth_update(SYMBOL, [("99.95", "12")], [("100.2", "0"), ("100.08", "6")], T0 + 100)
        sampled = f"SELECT count(*) FROM ops.raw_book_depth WHERE ts = to_timestamp({(T0 + 100) / 1000})"
        await wait_until(conn, sampled, 1)
        await run.finish()
    row = await conn.fetchrow(DEPTH_SQL, SYMBOL, datetime.fromtimestamp((T0 + 100) / 1000, UTC))
    assert row is not None, await conn.fetch("SELECT * FROM ops.raw_book_depth")
    buy_avg = NOTIONAL / (4 + (NOTIONAL - 4 * 100.05) / 100.08)  # 4 @ 100.05, the rest @ 100.08
    assert tuple(row) == pytest.approx(
        (
            100.0,
            99.95 * 12,  # bid within 10 bps: 99.95 only
            100.05 * 4 + 100.08 * 6,
            99.95 * 12 + 99.8 * 20,
            100.05 * 4 + 100.08 * 6,  # 100.2 was removed by the diff
            99.95 * 12 + 99.8 * 20 + 99.6 * 5,
            100.05 * 4 + 100.08 * 6 + 100.3 * 50,
            99.95 * 12 + 99.8 * 20 + 99.6 * 5 + 99.2 * 100,
            100.05 * 4 + 100.08 * 6 + 100.3 * 50 + 100.9 * 2,
            (buy_avg - 100.0) / 100.0 * 1e4,
            5.0,  # the whole sell fills at 99.95, 5 bps under mid
            150.0,  # asks reach 101.5 (150 bps), bids 98.0 (200 bps): the shorter side
            5,
            5,
        ),
        rel=1e-12,
    )
    assert server.depth_requests == [SYMBOL]
    assert [r for r in server.rest_requests if r.startswith("/fapi/v1/depth")] == [
        f"/fapi/v1/depth?symbol={SYMBOL}&limit=1000"
    ]


async def test_a_dropped_diff_is_a_seq_break_then_a_new_snapshot_makes_the_book_right_again(
    server, conn, db_dsn, tmp_path
):
    venue = depth_venue(server)
    async with running(db_dsn, [venue], tmp_path) as run:
        first = await first_sync(server, venue)
        server.depth_drop = 1
        lost = await server.depth_update(SYMBOL, [("99.95", "0")], [], T0 + 200)  # the best bid goes: never sent
        after = await server.depth_update(SYMBOL, [], [("100.05", "7")], T0 + 300)
        assert after["pu"] == lost["u"] != first["u"]
        await resynced_after_a_break(conn, server, venue)  # the lost removal of 99.95 is in: from the snapshot
        await wait_until(
            conn, "SELECT count(*) FROM ops.raw_book_depth WHERE ts = to_timestamp($1)", 1, (T0 + 300) / 1000
        )
        await run.finish()
    gaps = await conn.fetch("SELECT venue, symbol, stream, cause, from_id, to_id FROM ops.feed_gaps")
    assert [tuple(g) for g in gaps] == [("binance", SYMBOL, "depth", "seq_break", first["u"], after["U"])]
    assert server.depth_requests == [SYMBOL, SYMBOL]
    mid, bid_10 = await conn.fetchrow(
        "SELECT mid, bid_10bps FROM ops.raw_book_depth WHERE ts = $1", datetime.fromtimestamp((T0 + 300) / 1000, UTC)
    )
    assert mid == pytest.approx((99.9 + 100.05) / 2)  # best bid 99.9 now, not the removed 99.95
    assert bid_10 == pytest.approx(99.9 * 1)
    # nothing was sampled from the broken book: every stored sample is of a synced state
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM ops.raw_book_depth WHERE ts = $1", datetime.fromtimestamp((T0 + 200) / 1000, UTC)
        )
        == 0
    )


async def test_diffs_out_of_order_break_the_pu_chain_and_resync(server, conn, db_dsn, tmp_path):
    venue = depth_venue(server)
    async with running(db_dsn, [venue], tmp_path) as run:
        await first_sync(server, venue)
        server.depth_reorder = True
        await server.depth_update(SYMBOL, [("99.9", "0")], [], T0 + 200)  # held back, sent after the next
        await server.depth_update(SYMBOL, [], [("100.1", "3")], T0 + 300)
        await resynced_after_a_break(conn, server, venue)
        await run.finish()
    assert await conn.fetchval("SELECT count(*) FROM ops.feed_gaps") == 1


async def test_diffs_missed_during_a_reconnect_are_a_seq_break_not_a_wrong_book(server, conn, db_dsn, tmp_path):
    venue = depth_venue(server)
    async with running(db_dsn, [venue], tmp_path) as run:
        await first_sync(server, venue)
        await server.drop_all()
        await server.depth_update(SYMBOL, [("99.95", "0")], [], T0 + 200)  # published while nobody listens
        await server.wait_subscribed(STREAM)  # the runtime reconnected and subscribed again
        await server.depth_update(SYMBOL, [], [("100.1", "3")], T0 + 300)
        await resynced_after_a_break(conn, server, venue)  # the removal sent while nobody listened is in
        await run.finish()


async def test_diffs_buffered_while_the_snapshot_is_fetched_and_older_than_it_are_dropped(
    server, conn, db_dsn, tmp_path
):
    venue = depth_venue(server)
    server.depth_gate = asyncio.Event()  # the snapshot answer waits; it is read when released
    async with running(db_dsn, [venue], tmp_path) as run:
        await server.wait_subscribed(STREAM)
        await server.depth_update(SYMBOL, [("99.9", "1")], [], T0 + 100)
        await server.wait_until(lambda: server.depth_requests == [SYMBOL])
        await server.depth_update(SYMBOL, [("99.9", "0")], [("100.1", "2")], T0 + 200)
        await server.depth_update(SYMBOL, [("99.85", "4")], [], T0 + 300)
        last = await server.depth_update(SYMBOL, [], [("100.1", "5")], T0 + 400)
        await eventually(lambda: len(venue.depth_buffer.get(SYMBOL, ())) == 4)
        assert not venue.depth.book(SYMBOL).synced  # held, not applied, while the snapshot is on the way
        server.depth_gate.set()
        await eventually(lambda: same_book(venue, server))
        assert same_book(venue, server)
        assert venue.depth.book(SYMBOL).update_id == last["u"]
        await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", lambda n: n >= 1)
        await run.finish()
    # the snapshot's lastUpdateId is the last diff's u: the three before it are older and dropped, the last
    # one spans it and is applied; no break
    assert venue.counters["depth.dropped_before_snapshot"] == 3
    assert await conn.fetchval("SELECT count(*) FROM ops.feed_gaps") == 0
    assert server.depth_requests == [SYMBOL]


async def test_snapshot_requests_spend_the_rest_weight_budget_and_obey_rate_limits(server, conn, db_dsn, tmp_path):
    server.books["ETHUSDT"] = SimBook({"3000": "1"}, {"3001": "1"}, last_u=50, tx_ms=T0)
    venue = depth_venue(server, [SYMBOL, "ETHUSDT"])
    server.rate_limited = 1  # the first snapshot request is answered 429 (Retry-After: 1)
    async with running(db_dsn, [venue], tmp_path) as run:
        await server.wait_subscribed(STREAM)
        await server.wait_subscribed("ethusdt@depth@100ms")
        await server.depth_update(SYMBOL, [("99.9", "1")], [], T0 + 100)
        await server.depth_update("ETHUSDT", [("3000", "2")], [], T0 + 100)
        await eventually(lambda: same_book(venue, server) and same_book(venue, server, "ETHUSDT"))
        assert same_book(venue, server) and same_book(venue, server, "ETHUSDT")
        await wait_until(conn, "SELECT count(*) FROM ops.connection_events WHERE conn_id = 'rest-depth'", 1)
        await run.finish()
    requests = venue.counters["depth.snapshot_requests"]
    assert requests == 3  # two books, one request refused with 429 and asked again
    assert venue.rest_budget.spent == 20 * requests  # GET /fapi/v1/depth?limit=1000 weighs 20
    assert server.used_weight == 1 + 20 * 2  # the venue's own count: the 429 weighs 1, each answer 20
    reason = await conn.fetchval("SELECT reason FROM ops.connection_events WHERE conn_id = 'rest-depth'")
    assert reason.startswith("HTTP 429 for ")


async def test_bad_depth_frames_are_rejected_and_the_book_goes_on(server, conn, db_dsn, tmp_path):
    venue = depth_venue(server)
    async with running(db_dsn, [venue], tmp_path) as run:
        await first_sync(server, venue)
        u = server.books[SYMBOL].last_u
        bad = [
            depth_update(SYMBOL, u + 1, u + 2, u, [("NaN", "1")], [], T0 + 150, T0 + 151),
            depth_update(SYMBOL, u + 1, u + 2, u, [], [("100.4", "-2")], T0 + 150, T0 + 151),
            depth_update("XRPUSDT", 1, 2, 0, [("1", "1")], [], T0 + 150, T0 + 151),
        ]
        for frame in bad:
            await server.publish_raw(STREAM, orjson.dumps(frame).decode())
        await server.publish_raw(STREAM, '{"e":"depthUpdate","s":"BTCUSDT","U":')
        await server.depth_update(SYMBOL, [], [("100.1", "3")], T0 + 200)
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 4)
        await eventually(lambda: same_book(venue, server) and venue.depth.book(SYMBOL).update_id == u + 3)
        assert same_book(venue, server)
        await run.finish()
    rejected = await conn.fetch("SELECT stream, symbol, reason FROM ops.rejected_messages ORDER BY reason")
    got = [(r["stream"], r["symbol"], r["reason"]) for r in rejected]
    assert [(stream, symbol, reason.rsplit(":", 1)[0]) for stream, symbol, reason in got[:2]] == [
        ("depth", SYMBOL, "invalid: a.0.1"),  # a negative size
        ("depth", SYMBOL, "invalid: b.0.0"),  # a NaN price
    ]
    assert [reason.split(":")[0] for _, _, reason in got[2:]] == ["malformed_json", "unknown_symbol"]
    assert await conn.fetchval("SELECT count(*) FROM ops.feed_gaps") == 0  # the good chain was never broken


def test_without_a_rest_root_there_are_no_depth_books():
    venue = Binance([SYMBOL], ws_url="ws://127.0.0.1:9", derivs=False)
    venue.configure_depth(DepthConfig())
    assert venue.depth is None and venue.depth_snapshot_url(SYMBOL) is None
    assert not [s for r in venue.routes() for s in r.streams if "depth" in s]
    assert "depth books off; give --rest-url" in rest_off_notice(venue)  # the one notice logged at start


def _synced_adapter() -> Binance:
    venue = Binance([SYMBOL], rest_url="http://127.0.0.1:9", derivs=False)
    venue.configure_depth(DepthConfig(slippage_notional=NOTIONAL))
    return venue


def test_a_snapshot_older_than_every_held_diff_asks_for_another():
    venue, recv = _synced_adapter(), datetime.now(UTC)
    diff = depth_update(SYMBOL, 2001, 2003, 2000, [("99.9", "1")], [], T0, T0 + 1)
    assert venue.parse(orjson.dumps(diff), recv).resync == [SYMBOL]
    old = depth_snapshot(1990, [list(b) for b in BIDS], [list(a) for a in ASKS], T0 - 50, T0 - 49)
    out = venue.parse_depth_snapshot(SYMBOL, orjson.dumps(old), recv)
    assert out.resync == [SYMBOL] and out.rows == [] and not venue.depth.book(SYMBOL).synced
    fresh = depth_snapshot(2002, [list(b) for b in BIDS], [list(a) for a in ASKS], T0, T0 + 1)
    out = venue.parse_depth_snapshot(SYMBOL, orjson.dumps(fresh), recv)
    book = venue.depth.book(SYMBOL)
    assert out.resync == [] and book.synced and book.update_id == 2003 and book.bids[99.9] == 1.0


def test_the_first_diff_after_a_snapshot_spans_or_follows_its_last_update_id():
    venue, recv = _synced_adapter(), datetime.now(UTC)
    body = orjson.dumps(depth_snapshot(3000, [list(b) for b in BIDS], [list(a) for a in ASKS], T0, T0 + 1))
    venue.parse_depth_snapshot(SYMBOL, body, recv)
    follows = depth_update(SYMBOL, 3001, 3004, 3000, [("99.9", "1")], [], T0 + 1, T0 + 2)  # pu = lastUpdateId
    assert venue.parse(orjson.dumps(follows), recv).rows == []
    assert venue.depth.book(SYMBOL).update_id == 3004
    venue = _synced_adapter()
    venue.parse_depth_snapshot(SYMBOL, body, recv)
    later = depth_update(SYMBOL, 3002, 3004, 3001, [("99.9", "1")], [], T0 + 1, T0 + 2)  # 3001 never seen
    out = venue.parse(orjson.dumps(later), recv)
    assert [(g.cause, g.from_id, g.to_id) for g in out.rows] == [("seq_break", 3000, 3002)]
    assert out.resync == [SYMBOL] and not venue.depth.book(SYMBOL).synced


def test_a_snapshot_that_is_not_binances_format_is_a_clear_error():
    venue = _synced_adapter()
    for body in (b"<html>", b'{"lastUpdateId": 5, "E": 1, "T": 1, "bids": [["-1", "2"]], "asks": []}'):
        with pytest.raises(ValueError, match="invalid"):
            venue.parse_depth_snapshot(SYMBOL, body, datetime.now(UTC))


def test_golden_documented_messages():
    """Binance's documented examples (tests/golden/README.md: doc, not recordings): the REST snapshot of
    "Order Book" and the event of "Diff. Book Depth Streams"."""
    venue, recv = _synced_adapter(), datetime.fromtimestamp(1_589_436_923, UTC)
    snapshot = (GOLDEN / "depth_snapshot.json").read_bytes()
    out = venue.parse_depth_snapshot(SYMBOL, snapshot, recv)
    book = venue.depth.book(SYMBOL)
    assert (book.bids, book.asks, book.update_id) == ({4.0: 431.0}, {4.000002: 12.0}, 1027024)
    assert [(ms(r.ts), r.mid, r.bid_levels, r.ask_levels) for r in out.rows] == [(1589436922959, 4.000001, 1, 1)]
    assert out.rows[0].bid_10bps == pytest.approx(4.0 * 431.0) and out.rows[0].ask_10bps == pytest.approx(48.000024)

    venue = _synced_adapter()
    (event,) = (GOLDEN / "depth_update.jsonl").read_text().splitlines()
    assert venue.parse(event, recv).resync == [SYMBOL]  # a book without a snapshot: held, snapshot asked for
    expected = json.loads((GOLDEN / "depth_update.sync.json").read_text())
    around = depth_snapshot(expected["lastUpdateId"], [["0.0023", "5"]], [["0.0026", "1"]], 123456700, 123456701)
    out = venue.parse_depth_snapshot(SYMBOL, orjson.dumps(around), recv)
    book = venue.depth.book(SYMBOL)
    assert book.synced and book.update_id == expected["update_id"]
    assert book.sorted_bids() == [tuple(level) for level in expected["bids"]]
    assert book.sorted_asks() == [tuple(level) for level in expected["asks"]]
    assert [ms(r.ts) for r in out.rows] == [expected["ts_ms"]]


async def test_the_demo_shows_binance_depth(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    monkeypatch.setattr(demo, "DISCONNECT_EVERY_S", 1e9)  # a dropped connection may really lose a diff
    assert await asyncio.to_thread(main, ["demo", "--duration", "3"]) == 0
    rows = await conn.fetch(
        "SELECT symbol, count(*) AS n, min(bid_25bps) AS bid, min(ask_25bps) AS ask, max(reach_bps) AS reach "
        "FROM ops.raw_book_depth WHERE venue = 'binance' GROUP BY symbol ORDER BY symbol"
    )
    assert [r["symbol"] for r in rows] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert all(r["n"] >= 2 and r["bid"] > 0 and r["ask"] > 0 and r["reach"] > 100 for r in rows), rows
    assert await conn.fetch("SELECT * FROM ops.feed_gaps WHERE stream = 'depth'") == []
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0


def test_bench_depth_prints_figures_and_the_result_line(capsys):
    assert main(["bench", "depth", "--frames", "400", "--rounds", "1", "--symbols", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"RESULT depth_msgs_per_s=(\d+) sample_us=(\d+)", lines[-1])
    assert m, lines[-1]
    assert int(m.group(1)) > 0
    assert any(line.startswith("parse+apply: ") for line in lines)


async def test_bench_depth_end_to_end_applies_every_diff_and_leaves_no_rows(
    monkeypatch, conn, db_dsn, tmp_path, capsys
):
    env(monkeypatch, db_dsn, tmp_path)
    monkeypatch.setenv("TOWER_INGEST_DEPTH_SAMPLE_MS", "100")
    args = ["bench", "depth", "--frames", "200", "--rounds", "1", "--symbols", "2", "--end-to-end", "0.5"]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    m = re.search(r"end to end: [\d,]+ diffs/s applied \((\d+) of (\d+) sent; .*: (\d+) samples stored", out)
    assert m, out
    applied, sent, samples = map(int, m.groups())
    assert applied == sent > 0 and samples > 0
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_book_depth") == 0
