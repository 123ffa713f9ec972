"""OKX v5 `books` depth for swaps: the 400-level book kept by its seqId/prevSeqId chain and verified by its CRC32
checksum, sizes converted from contracts, sampled into ops.raw_book_depth; breaks recorded in ops.feed_gaps and
resynced by resubscribing, end to end through the loopback OKX server and the database."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given

from ingest.depth import DepthConfig
from ingest.rows import BookDepth, GapEvent, Rejection
from ingest.sim import okx_server as okx
from ingest.sim.okx_server import OkxServer, SimBook
from ingest.venues.okx import Okx, WireBook, parsed_levels
from tests import test_fuzz_parsers as fuzz
from tests.support.ingest_helpers import running, wait_until
from tests.test_ingest_okx import BTC, T0, ms, venue

CT = 0.01  # BTC-USDT-SWAP: 0.01 BTC a contract (the loopback server's instrument list says so)
# mid 50000: bids at 1, 8, 20, 40 and 200 bps below it, asks at 1, 8, 20, 60 and 200 bps above; contracts.
BIDS = [("49995", "100"), ("49960", "50"), ("49900", "200"), ("49800", "10"), ("49000", "1000")]
ASKS = [("50005", "40"), ("50040", "60"), ("50100", "100"), ("50300", "300"), ("51000", "500")]
SEQ = 5000  # seqId of the server's book when a test starts


def notional(levels) -> float:
    """Quote-currency notional of (price, contracts) levels in base units."""
    return sum(float(p) * float(q) * CT for p, q in levels)


def depth_venue(server: OkxServer, sample_s: float = 0.1):
    v = venue(server, derivs=False)
    v.configure_depth(DepthConfig(sample_s=sample_s))
    return v


@pytest.fixture
async def server():
    s = await OkxServer().start()
    s.set_book(BTC, BIDS, ASKS, T0, seq=SEQ)
    yield s
    await s.stop()


LATEST = "SELECT * FROM ops.raw_book_depth ORDER BY recv_ts DESC LIMIT 1"


async def latest_depth(conn, ts_ms: int, within_s: float = 15.0):
    """The newest depth sample once it is of the book as of venue time ts_ms."""
    await wait_until(
        conn,
        "SELECT count(*) FROM ops.raw_book_depth WHERE ts = $1",
        lambda n: n >= 1,
        datetime.fromtimestamp(ts_ms / 1000, UTC),
        within_s=within_s,
    )
    return await conn.fetchrow(LATEST)


def gaps_sql(cause: str) -> str:
    return f"SELECT count(*) FROM ops.feed_gaps WHERE stream = 'depth' AND cause = '{cause}'"


# -- the checksum: OKX's documented worked examples ------------------------------------------------------


def wire_book(bids, asks) -> WireBook:
    book = WireBook()
    book.bids.reset(parsed_levels([(p, q, "0", "1") for p, q in bids]))
    book.asks.reset(parsed_levels([(p, q, "0", "1") for p, q in asks]))
    return book


def test_checksum_of_the_documented_examples():
    # OKX v5 docs, order book channel, "Checksum": the check strings; the signed CRC32 values are those the OKX
    # v3 docs gave for the same two books (the algorithm is unchanged).
    even = wire_book([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    assert even.check_string() == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert even.checksum() == -1881014294
    odd = wire_book([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
    assert odd.check_string() == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert odd.checksum() == 831078360


def test_checksum_uses_the_wire_strings_and_the_best_25_levels_after_updates():
    # "If price is '0.5000', DO NOT calculate the checksum by '0.5'": the strings as received.
    book = wire_book([("0.5000", "10.0")], [("0.5010", "3")])
    assert book.check_string() == "0.5000:10.0:0.5010:3"
    book = wire_book([(str(1000 - i), "1") for i in range(30)], [(str(1001 + i), "2") for i in range(30)])
    # an update inserts a new best bid, deletes the best ask and one outside the top 25
    for price, px, sz, size in parsed_levels([("1000.5", "4", "0", "1")]):
        book.bids.set(price, px, sz, size)
    for price, px, sz, size in parsed_levels([("1001", "0", "0", "0"), ("1030", "0", "0", "0")]):
        book.asks.set(price, px, sz, size)
    bids = ["1000.5:4"] + [f"{1000 - i}:1" for i in range(24)]
    asks = [f"{1002 + i}:2" for i in range(25)]
    assert book.check_string() == ":".join(x for pair in zip(bids, asks, strict=True) for x in pair)
    # the loopback server computes it on its own book, sorting it: the same value
    sim = SimBook({str(1000 - i): "1" for i in range(30)} | {"1000.5": "4"}, {str(1002 + i): "2" for i in range(28)})
    assert book.checksum() == sim.checksum()


# -- the adapter alone: routes, resync frames, the sequence rules ---------------------------------------


def test_books_ride_their_own_connections_only_with_depth_on():
    symbols = [f"C{i}-USDT-SWAP" for i in range(30)]
    plain = okx_adapter(symbols, depth=False)
    assert all("books" not in n for r in plain.routes() for n in r.streams)
    v = okx_adapter(symbols, depth=True)
    books = [r for r in v.routes() if r.name.startswith("books-")]
    assert [len(r.streams) for r in books] == [25, 5]  # OKX: fewer than 30 such channels a connection
    assert [r.expected_acks for r in books] == [25, 5]
    args = orjson.loads(books[1].subscribe[0])["args"]
    assert args == [{"channel": "books", "instId": s} for s in symbols[25:]]
    assert [orjson.loads(f) for f in v.depth_resync("C3-USDT-SWAP")] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "C3-USDT-SWAP"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "C3-USDT-SWAP"}]},
    ]


def okx_adapter(symbols, depth=True):
    v = Okx(symbols, contract_sizes={s: CT for s in symbols})
    if depth:
        v.configure_depth(DepthConfig(sample_s=0.1))
    return v


def frames(book: SimBook, *changes):
    """The snapshot of `book` and one update per (bids, asks) change, as the loopback server writes them."""
    out = [okx.books_push(BTC, "snapshot", book.best("bids", 400), book.best("asks", 400), book, -1)]
    for bids, asks in changes:
        book.change("bids", bids)
        book.change("asks", asks)
        prev, book.seq = book.seq, book.seq + 3
        out.append(okx.books_push(BTC, "update", bids, asks, book, prev))
    return [orjson.dumps(f) for f in out]


def test_keepalive_and_a_sequence_reset_continue_the_book():
    v = okx_adapter([BTC])
    recv = datetime.now(UTC)
    book = SimBook(dict(BIDS), dict(ASKS), T0, SEQ)
    snapshot, update = frames(book, ([("49995", "0")], []))
    assert v.parse(snapshot, recv).rows  # the first sample
    keepalive = okx.books_push(BTC, "update", [], [], book, book.seq - 3)  # prevSeqId = seqId: nothing changed
    keepalive["data"][0]["prevSeqId"] = keepalive["data"][0]["seqId"] = SEQ
    got = v.parse(orjson.dumps(keepalive), recv)
    assert (got.rows, got.resync) == ([], [])
    assert v.parse(update, recv).resync == []
    # after maintenance the sequence restarts lower: prevSeqId still names the last message
    book.seq = 7
    reset = okx.books_push(BTC, "update", [("49960", "0")], [], book, SEQ + 3)
    book.change("bids", [("49960", "0")])
    reset["data"][0]["checksum"] = book.checksum()
    got = v.parse(orjson.dumps(reset), recv)
    assert got.resync == [] and not [r for r in got.rows if type(r).__name__ == "GapEvent"]
    held = v.depth.books[BTC]
    assert held.synced and held.update_id == 7 and max(held.bids) == 49900.0


# -- end to end: loopback OKX -> ingest -> TimescaleDB ----------------------------------------------------


async def test_a_known_book_gives_exact_bands_in_base_units(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        row = await latest_depth(conn, T0)
    mid = 50000.0
    assert row["mid"] == mid
    # within 10 bps (>= 49950 / <= 50050): 1 and 8 bps; 25 bps adds the 20 bps levels; 50 adds 40 bps (bids)
    # only; 100 bps the same; 200 bps levels never count.
    assert row["bid_10bps"] == pytest.approx(49995 * 1.0 + 49960 * 0.5)
    assert row["ask_10bps"] == pytest.approx(50005 * 0.4 + 50040 * 0.6)
    assert row["bid_25bps"] == pytest.approx(notional(BIDS[:3]))
    assert row["ask_25bps"] == pytest.approx(notional(ASKS[:3]))
    assert row["bid_50bps"] == row["bid_100bps"] == pytest.approx(notional(BIDS[:4]))
    assert row["ask_50bps"] == pytest.approx(notional(ASKS[:3]))
    assert row["ask_100bps"] == pytest.approx(notional(ASKS[:4]))
    # a 100k buy: 0.4 BTC @ 50005 and 0.6 @ 50040 (50026), then the rest at 50100
    rest = (100_000 - 50005 * 0.4 - 50040 * 0.6) / 50100
    buy_avg = 100_000 / (0.4 + 0.6 + rest)
    assert row["buy_slip_bps"] == pytest.approx((buy_avg - mid) / mid * 1e4)
    # a 100k sell: 1 BTC @ 49995, 0.5 @ 49960, the rest at 49900
    rest = (100_000 - 49995 * 1.0 - 49960 * 0.5) / 49900
    sell_avg = 100_000 / (1.0 + 0.5 + rest)
    assert row["sell_slip_bps"] == pytest.approx((mid - sell_avg) / mid * 1e4)
    assert row["reach_bps"] == pytest.approx(200.0)
    assert (row["bid_levels"], row["ask_levels"], row["venue"], row["symbol"]) == (5, 5, "okx", BTC)
    assert await conn.fetchval("SELECT count(*) FROM ops.feed_gaps") == 0
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0


async def test_an_update_changes_the_sampled_book(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        await latest_depth(conn, T0)
        # the best bid goes, a new one comes at 49990 (1 bps), the 60 bps ask grows to 0.5 BTC... in contracts
        await server.book_update(BTC, [("49995", "0"), ("49990", "30")], [("50300", "50")], T0 + 100)
        row = await latest_depth(conn, T0 + 100)
    assert row["mid"] == (49990 + 50005) / 2
    assert row["bid_levels"] == 5
    assert row["bid_10bps"] == pytest.approx(49990 * 0.3 + 49960 * 0.5)
    assert row["ask_100bps"] == pytest.approx(notional(ASKS[:3]) + 50300 * 0.5)


async def test_a_dropped_update_is_a_seq_break_then_a_resubscribe_syncs_the_book_again(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        await latest_depth(conn, T0)
        server.drop_updates = 1
        await server.book_update(BTC, [("49960", "0")], [], T0 + 100)  # lost on the way
        sent = await server.book_update(BTC, [], [("50005", "0")], T0 + 200)
        await wait_until(conn, gaps_sql("seq_break"), 1)
        await server.wait_until(lambda: server.snapshots_sent == 2)
        await server.book_update(BTC, [("49990", "10")], [], T0 + 300)  # continues the new snapshot's chain
        row = await latest_depth(conn, T0 + 300)
    gap = await conn.fetchrow("SELECT from_id, to_id, from_ts, missing FROM ops.feed_gaps WHERE stream = 'depth'")
    assert (gap["from_id"], gap["to_id"], gap["missing"]) == (SEQ, sent["data"][0]["seqId"], None)
    assert ms(gap["from_ts"]) == T0  # the last update the book had applied
    # the book after both changes and the new level: best bid 49995, 49990, 49900...; best ask 50040
    assert row["mid"] == (49995 + 50040) / 2
    assert (row["bid_levels"], row["ask_levels"]) == (5, 4)
    bids = [("49995", "100"), ("49990", "10"), ("49900", "200"), ("49800", "10")]
    assert row["bid_100bps"] == pytest.approx(notional(bids))
    assert await conn.fetchval(gaps_sql("checksum")) == 0


async def test_a_checksum_mismatch_is_recorded_and_resynced(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        await latest_depth(conn, T0)
        server.corrupt_checksums = 1
        bad = await server.book_update(BTC, [("49960", "70")], [], T0 + 100)
        await wait_until(conn, gaps_sql("checksum"), 1)
        await server.wait_until(lambda: server.snapshots_sent == 2)
        await server.book_update(BTC, [("49800", "0")], [], T0 + 200)
        row = await latest_depth(conn, T0 + 200)
    gap = await conn.fetchrow("SELECT from_id, to_id FROM ops.feed_gaps WHERE stream = 'depth'")
    assert tuple(gap) == (bad["data"][0]["prevSeqId"], bad["data"][0]["seqId"])
    assert row["bid_levels"] == 4
    assert row["bid_10bps"] == pytest.approx(49995 * 1.0 + 49960 * 0.7)


async def test_a_reconnect_snapshot_after_missed_updates_is_a_resync(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        await latest_depth(conn, T0)
        server.drop_updates = 1
        await server.book_update(BTC, [], [("50040", "0")], T0 + 100)  # happens while the connection is down
        await server.drop_all()
        row = await latest_depth(conn, T0 + 100)
    gap = await conn.fetchrow("SELECT from_id, to_id, cause FROM ops.feed_gaps WHERE stream = 'depth'")
    assert tuple(gap) == (SEQ, SEQ + okx.SEQ_STEP, "resync")
    assert row["ask_levels"] == 4


async def test_bad_books_messages_are_rejected_and_the_book_recovers(server, conn, db_dsn, tmp_path):
    def raw(action: str, **item) -> str:
        base = {"asks": [], "bids": [], "ts": str(T0 + 1), "checksum": 0, "prevSeqId": SEQ, "seqId": SEQ + 1}
        return orjson.dumps({"arg": {"channel": "books", "instId": BTC}, "action": action, "data": [base | item]})

    async with running(db_dsn, [depth_venue(server)], tmp_path):
        await server.wait_subscribed(f"books:{BTC}")
        await latest_depth(conn, T0)
        key = f"books:{BTC}"
        await server.publish_raw(key, raw("update", bids=[["NaN", "1", "0", "1"]]).decode())  # breaks the book
        await server.wait_until(lambda: server.snapshots_sent == 2)
        await server.publish_raw(key, raw("update", bids=[["49990", "-1", "0", "1"]]).decode())
        await server.publish_raw(key, raw("update", seqId=None).decode())
        await server.publish_raw(key, raw("replace").decode())
        doge = orjson.loads(raw("update"))
        doge["arg"]["instId"] = "DOGE-USDT-SWAP"
        await server.publish_raw(key, orjson.dumps(doge).decode())
        await server.wait_until(lambda: server.snapshots_sent == 3)  # the negative size broke the new book too
        await server.book_update(BTC, [("49990", "10")], [], T0 + 300)
        row = await latest_depth(conn, T0 + 300)
    reasons = sorted(r["reason"].split(":")[0:2] for r in await conn.fetch("SELECT reason FROM ops.rejected_messages"))
    assert reasons == [
        ["invalid", " action"],
        ["invalid", " level '49990' '-1'"],
        ["invalid", " level 'NaN' '1'"],
        ["invalid", " seqId"],
        ["unknown_symbol"],
    ]
    assert await conn.fetchval(gaps_sql("resync")) == 2
    assert row["bid_levels"] == 6  # the book from the snapshot, plus the update after it


def test_levels_far_past_the_channels_400_are_dropped_from_both_copies():
    v = okx_adapter([BTC])
    recv = datetime.now(UTC)
    book = SimBook(dict(BIDS), dict(ASKS), T0, SEQ)
    far = [(str(40000 - i), "1") for i in range(2 * 400)]  # 800 more bids below the book: 805 held
    got = [v.parse(f, recv) for f in frames(book, (far, []))]
    assert got[1].resync == []  # the checksum (best 25) still matches the server's
    held, wire = v.depth.books[BTC], v.wire_books[BTC]
    assert len(held.bids) == len(wire.bids.keys) == 400 and len(held.asks) == 5
    assert min(held.bids) == 40000 - (400 - len(BIDS) - 1)  # the best 400 kept


# -- fuzzing: whatever a books frame holds, no exception, and only rows the database accepts -------------


def books_templates() -> list[dict]:
    book = SimBook(dict(BIDS), dict(ASKS), T0, SEQ)
    snapshot, update = frames(book, ([("49995", "0"), ("49990", "3")], [("50040", "61")]))
    return [orjson.loads(snapshot), orjson.loads(update)]


@given(frame=fuzz.frames(books_templates()))
def test_the_books_parser_survives_any_frame(frame):
    v = okx_adapter([BTC, "ETH-USDT-SWAP"])
    del v.contract_sizes["ETH-USDT-SWAP"]  # a symbol without a known contract size
    v.parse(orjson.dumps(books_templates()[0]), datetime.now(UTC))  # a synced book to break
    parsed = v.parse(frame, fuzz.RECV)
    for row in parsed.rows:
        assert isinstance(row, Rejection | GapEvent | BookDepth), row
        if isinstance(row, BookDepth):  # what ops.raw_book_depth's CHECK constraint requires
            bands = (row.bid_10bps, row.bid_25bps, row.bid_50bps, row.bid_100bps)
            asks = (row.ask_10bps, row.ask_25bps, row.ask_50bps, row.ask_100bps)
            assert row.mid > 0 and all(math.isfinite(x) for x in bands + asks)
            assert list(bands) == sorted(bands) and list(asks) == sorted(asks) and bands[0] >= 0 <= asks[0]
            assert row.bid_levels > 0 and row.ask_levels > 0 and row.reach_bps >= 0
        if isinstance(row, GapEvent):
            assert row.stream == "depth" and row.cause in ("seq_break", "checksum", "resync")
    held = v.depth.books[BTC]
    assert held.synced or held.resyncing  # a broken book always has a snapshot on the way
