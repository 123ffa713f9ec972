"""Hyperliquid depth books (l2Book) end to end: the loopback server holds a full book and sends what the venue
sends (at most 20 levels per side, aggregated to the subscription's nSigFigs); every message replaces the held book,
and ops.raw_book_depth says exactly what that capped book holds and how far it reaches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.depth import DepthConfig
from ingest.sim.hyperliquid_server import HyperliquidServer
from ingest.venues.hyperliquid import Hyperliquid, depth_sig_figs
from tests.support.ingest_helpers import running, wait_until

T0 = int(datetime(2026, 12, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)
GOLDEN = Path(__file__).parent / "golden" / "hyperliquid"
NOTIONAL = 10_000.0
SQL = (
    "SELECT mid, bid_10bps, ask_10bps, bid_25bps, ask_25bps, bid_50bps, ask_50bps, bid_100bps, ask_100bps, "
    "buy_slip_bps, sell_slip_bps, reach_bps, bid_levels, ask_levels, ts FROM ops.raw_book_depth "
    "WHERE venue = 'hyperliquid' AND symbol = $1 ORDER BY ts"
)

# ETH, mid 3000.0: 30 levels a side 0.5 apart, level i (0 = best) 0.4 + 0.5 i from mid with size 1 + i.
BIDS = {f"{2999.6 - 0.5 * i:.1f}": (str(1 + i), 2) for i in range(30)}
ASKS = {f"{3000.4 + 0.5 * i:.1f}": (str(1 + i), 3) for i in range(30)}


def venue(server: HyperliquidServer, coins: list[str], *, rest: bool = False) -> Hyperliquid:
    v = Hyperliquid(coins, ws_url=server.url, derivs=False, rest_url=server.rest_url if rest else None)
    v.configure_depth(DepthConfig(sample_s=0.0, slippage_notional=NOTIONAL))
    return v


def notional(levels: list[tuple[float, float]]) -> float:
    return sum(p * q for p, q in levels)


async def test_a_capped_book_holds_twenty_levels_and_says_how_far_it_reaches(conn, db_dsn, tmp_path):
    server = await HyperliquidServer().start()
    server.set_book("ETH", BIDS, ASKS, T0)
    try:
        async with running(db_dsn, [venue(server, ["ETH"])], tmp_path):
            await server.wait_subscribed("l2Book", "ETH")
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 1)
            # the next snapshot replaces the whole book: the best bid is gone, nothing else changed
            await server.publish_book("ETH", {k: v for k, v in BIDS.items() if k != "2999.6"}, ASKS, T0 + 500)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 2)
    finally:
        await server.stop()
    rows = [tuple(r.values()) for r in await conn.fetch(SQL, "ETH")]
    bid = [(2999.6 - 0.5 * i, 1.0 + i) for i in range(20)]  # what the venue sends: the best 20
    ask = [(3000.4 + 0.5 * i, 1.0 + i) for i in range(20)]
    # 10 bps of 3000 = 3.0: levels 0-5; 25 bps = 7.5: levels 0-14; 50 and 100 bps: all 20 held
    expected = (
        3000.0,
        notional(bid[:6]), notional(ask[:6]), notional(bid[:15]), notional(ask[:15]),
        notional(bid), notional(ask), notional(bid), notional(ask),
    )  # fmt: skip
    assert rows[0][:9] == pytest.approx(expected)
    # 10,000 buys 1 @ 3000.4, 2 @ 3000.9, then 3.33... @ 3001.4 (the rest)
    rest = NOTIONAL - 3000.4 - 2 * 3000.9
    buy_avg = NOTIONAL / (3 + rest / 3001.4)
    assert rows[0][9] == pytest.approx((buy_avg - 3000) / 3000 * 1e4)
    # reach: the 20th level, 0.4 + 9.5 = 9.9 from mid on either side, not the 30 levels the server holds
    assert rows[0][11:14] == (pytest.approx(9.9 / 3000 * 1e4), 20, 20)
    assert rows[0][14] == datetime.fromtimestamp(T0 / 1000, UTC)
    # second snapshot: best bid 2999.1, mid 2999.75; the 20 bids now end at 2989.6 (level 20 of the server's 30)
    assert rows[1][0] == pytest.approx(2999.75)
    assert rows[1][12:14] == (20, 20)
    assert rows[1][11] == pytest.approx((2999.75 - 2989.6) / 2999.75 * 1e4)


async def test_aggregation_chosen_from_the_mid_reaches_further(conn, db_dsn, tmp_path):
    # BTC at 99,000: 4 significant figures make 10-dollar buckets (1 bps), and 20 of them reach 20 bps where the
    # full-precision book's 20 levels (one every 2 dollars here) would reach 4.
    assert depth_sig_figs(99_000.0) == 4 and depth_sig_figs(3000.0) is None
    server = await HyperliquidServer().start()
    server.mids = {"BTC": "99000.5", "ETH": "3000.0"}
    bids = {f"{98999 - 2 * i}": ("0.5", 1) for i in range(150)}  # 98999, 98997, ... 98701
    asks = {f"{99001 + 2 * i}": ("0.25", 1) for i in range(150)}
    server.set_book("BTC", bids, asks, T0)
    try:
        async with running(db_dsn, [venue(server, ["BTC"], rest=True)], tmp_path):
            await server.wait_subscribed("l2Book", "BTC")
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 1)
    finally:
        await server.stop()
    assert list(server.book_sig_figs.values()) == [4]  # the subscription asked for 4 figures
    (row,) = [tuple(r.values()) for r in await conn.fetch(SQL, "BTC")]
    # buckets (bids down, asks up): bids 98990 (98999..98991: 5 orders of 0.5), 98980, ...; asks 99010 (99001..
    # 99009: 5 of 0.25), 99020, ...; 20 a side
    mid = (98990 + 99010) / 2
    assert row[0] == pytest.approx(mid)
    # 10 bps of 99,000 = 99: the buckets 98990 .. 98910 (9 of 2.5 BTC) and 99010 .. 99090 (9 of 1.25 BTC)
    assert row[1:3] == pytest.approx(
        (sum((98990 - 10 * k) * 2.5 for k in range(9)), sum((99010 + 10 * k) * 1.25 for k in range(9)))
    )
    assert row[12:14] == (20, 20)
    assert row[11] == pytest.approx((mid - 98800) / mid * 1e4)  # the 20th bucket: 98800 / 99200, 20.2 bps
    assert row[11] > 20


async def test_bad_books_are_quarantined_and_the_feed_goes_on(conn, db_dsn, tmp_path):
    server = await HyperliquidServer().start()
    try:
        async with running(db_dsn, [venue(server, ["ETH"])], tmp_path):
            await server.wait_subscribed("l2Book", "ETH")
            level = {"px": "2999.0", "sz": "1", "n": 1}
            bad = [
                {"coin": "ETH", "time": T0, "levels": [[{"px": "NaN", "sz": "1", "n": 1}], [level]]},
                {"coin": "ETH", "time": T0, "levels": [[level], [{"px": "3001", "sz": "-2", "n": 1}]]},
                {"coin": "ETH", "time": T0, "levels": [[level]]},  # one list, not [bids, asks]
                {"coin": "ETH", "time": T0, "levels": [[{"px": "3002", "sz": "1", "n": 1}], [level]]},  # crossed
                {"coin": "DOGE", "time": T0, "levels": [[level], [{"px": "3001", "sz": "1", "n": 1}]]},
            ]
            for data in bad:
                await server.publish("l2Book", "ETH", data)
            await server.publish_raw("l2Book:ETH", '{"channel": "l2Book", "data": {"coin": "ETH", "time": ')
            await server.publish_book("ETH", {"2999.0": ("1", 1)}, {"3001.0": ("2", 1)}, T0 + 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_depth", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 6)
    finally:
        await server.stop()
    reasons = [r["reason"] for r in await conn.fetch("SELECT reason FROM ops.rejected_messages ORDER BY recv_ts")]
    assert sorted(r.split(":")[0] for r in reasons) == sorted(
        # one side list short of [bids, asks]: msgspec says "expected an array of length 2", an invalid value
        ["invalid", "invalid", "invalid", "crossed_book", "unknown_symbol", "malformed_json"]
    )
    assert any("levels.0.0.px" in r for r in reasons) and any("levels.1.0.sz" in r for r in reasons)
    row = await conn.fetchrow("SELECT mid, bid_10bps, ask_10bps, bid_levels, ask_levels FROM ops.raw_book_depth")
    assert tuple(row) == (3000.0, 2999.0, 6002.0, 1, 1)


def test_documented_l2book_gives_the_documented_book():
    """tests/golden/hyperliquid/l2book.jsonl: the docs' example book (see the README there)."""
    hl = Hyperliquid(["BTC"])
    hl.configure_depth(DepthConfig(sample_s=0.0))  # the default standard order: 100,000 USD
    recv = datetime(2026, 12, 2, tzinfo=UTC)
    first, repeat = [hl.parse(line, recv) for line in (GOLDEN / "l2book.jsonl").open()]
    (row,) = first.rows
    # mid 20,000; 19900 / 20100 are exactly 50 bps away, 19800 / 20200 exactly 100 bps: both inside
    assert (row.mid, row.bid_10bps, row.ask_10bps, row.bid_25bps, row.ask_25bps) == (20000.0, 0, 0, 0, 0)
    assert (row.bid_50bps, row.ask_50bps) == pytest.approx((19900.0, 20100.0))
    assert (row.bid_100bps, row.ask_100bps) == pytest.approx((19900.0 + 2 * 19800, 20100.0 + 2 * 20200))
    buy_avg = 100_000 / (1 + 2 + (100_000 - 20100 - 2 * 20200) / 20300)
    sell_avg = 100_000 / (1 + 2 + (100_000 - 19900 - 2 * 19800) / 19700)
    assert (row.buy_slip_bps, row.sell_slip_bps) == pytest.approx(
        ((buy_avg - 20000) / 2, (20000 - sell_avg) / 2)  # bps of 20,000: / 20000 x 1e4
    )
    assert (row.reach_bps, row.bid_levels, row.ask_levels) == (pytest.approx(150.0), 3, 3)
    assert row.ts == datetime.fromtimestamp(1681222254.710, UTC)
    assert repeat.rows == [] and repeat.live  # the same time again: the snapshot a resubscribe resends
    assert [r.streams for r in Hyperliquid(["BTC"]).routes()] == [("trades:BTC", "bbo:BTC", "activeAssetCtx:BTC")]
    assert hl.routes()[0].streams[-1] == "l2Book:BTC"


async def test_aggregation_per_coin_from_the_mids_and_full_precision_without_them():
    server = await HyperliquidServer().start()
    try:
        server.mids = {"BTC": "99000.5", "ETH": "3000.0", "SOL": "NaN", "@107": "0.5"}
        hl = venue(server, ["BTC", "ETH", "SOL"], rest=True)
        await hl.prepare({})
        assert hl.sig_figs == {"BTC": 4, "ETH": None}  # a mid that is no number: full precision
        subs = [orjson.loads(f)["subscription"] for f in hl.routes()[0].subscribe]
        assert [s for s in subs if s["type"] == "l2Book"] == [
            {"type": "l2Book", "coin": "BTC", "nSigFigs": 4},
            {"type": "l2Book", "coin": "ETH"},
            {"type": "l2Book", "coin": "SOL"},
        ]
        server.rest_down = True
        down = venue(server, ["BTC"], rest=True)
        await down.prepare({})  # logged, never raised: the books are full precision
        assert down.sig_figs == {} and "nSigFigs" not in orjson.loads(down.routes()[0].subscribe[-1])["subscription"]
    finally:
        await server.stop()
