"""Depth books against messages recorded from the live venues (tests/golden/README.md, C1-C3): a Binance
USD-M diff stream with the REST snapshot taken during it, and an OKX `books` stream with the venue's own
checksums. The loopback servers speak the documented protocols; these are what the venues actually sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ingest.depth import DepthConfig
from ingest.rows import BookDepth, GapEvent, Rejection
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx

GOLDEN = Path(__file__).resolve().parent / "golden"


def recorded(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def replay(book: dict[str, dict[float, float]], bids, asks) -> None:
    """The book a diff leaves, computed here independently of the adapter: size 0 removes the level."""
    for side, levels in (("bids", bids), ("asks", asks)):
        for price, size in levels:
            if float(size) == 0:
                book[side].pop(float(price), None)
            else:
                book[side][float(price)] = float(size)


def test_binance_live_diffs_and_snapshot_sync_without_a_break_and_give_the_venues_book():
    # 255 SUSHIUSDT diffs with their `pu` chain, and the limit=1000 snapshot cryptofeed fetched while they
    # streamed (received at its recorded time): diffs before it are held, those older than lastUpdateId dropped.
    venue = Binance(["SUSHIUSDT"], rest_url="http://127.0.0.1:9", derivs=False)
    venue.configure_depth(DepthConfig(sample_s=1.0))
    snap = json.loads((GOLDEN / "binance" / "depth_live_snapshot.json").read_text())
    body = json.loads(snap["rest"])
    diffs = recorded(GOLDEN / "binance" / "depth_live.jsonl")
    rows, asked = [], 0
    expected = {
        "bids": {float(p): float(q) for p, q in body["bids"]},
        "asks": {float(p): float(q) for p, q in body["asks"]},
    }
    snapshot_given = False
    for line in diffs:
        if not snapshot_given and line["recv"] > snap["recv"]:
            out = venue.parse_depth_snapshot("SUSHIUSDT", snap["rest"].encode(), at(snap["recv"]))
            rows += out.rows
            assert out.resync == []
            snapshot_given = True
        out = venue.parse(line["frame"], at(line["recv"]))
        rows += out.rows
        asked += len(out.resync)
        event = orjson.loads(line["frame"])["data"]
        if event["u"] >= body["lastUpdateId"]:
            replay(expected, event["b"], event["a"])
    assert snapshot_given and asked == 1  # one snapshot asked for, at the first diff
    assert not [r for r in rows if isinstance(r, GapEvent | Rejection)]
    book = venue.depth.book("SUSHIUSDT")
    assert book.synced and book.update_id == orjson.loads(diffs[-1]["frame"])["data"]["u"]
    assert book.bids == expected["bids"] and book.asks == expected["asks"]
    samples = [r for r in rows if isinstance(r, BookDepth)]
    assert samples and all(s.bid_levels > 0 and s.ask_levels > 0 and s.mid > 0 for s in samples)


def test_okx_live_books_checksums_all_match_and_the_book_is_the_venues():
    # 1 snapshot and 92 updates of UNI-USD-SWAP, each with OKX's own CRC32 of its best 25 levels: every one
    # must match what the adapter computes from its book. The 2022 capture predates seqId/prevSeqId, so the
    # test numbers the messages as a chain (the only change to the recorded frames); the contract size is
    # given as 1 (a coin-margined swap: sizes stay contracts here; the checksum is over the wire strings).
    venue = Okx(["UNI-USD-SWAP"], contract_sizes={"UNI-USD-SWAP": 1.0})
    venue.configure_depth(DepthConfig(sample_s=1.0))
    lines = recorded(GOLDEN / "okx" / "books_live.jsonl")
    rows, resyncs = [], 0
    expected: dict[str, dict[float, float]] = {"bids": {}, "asks": {}}
    for seq, line in enumerate(lines, start=1):
        msg = orjson.loads(line["frame"])
        item = msg["data"][0]
        item["seqId"], item["prevSeqId"] = seq, (-1 if msg["action"] == "snapshot" else seq - 1)
        if msg["action"] == "snapshot":
            expected = {"bids": {}, "asks": {}}
        replay(expected, [lv[:2] for lv in item["bids"]], [lv[:2] for lv in item["asks"]])
        out = venue.parse(orjson.dumps(msg), at(line["recv"]))
        rows += out.rows
        resyncs += len(out.resync)
    assert lines[0]["frame"].count('"action":"snapshot"') == 1 and len(lines) == 93
    assert resyncs == 0 and not [r for r in rows if isinstance(r, GapEvent | Rejection)]  # 93 checksums match
    book = venue.depth.book("UNI-USD-SWAP")
    assert book.synced and book.bids == expected["bids"] and book.asks == expected["asks"]
    assert [r for r in rows if isinstance(r, BookDepth)]


def test_okx_a_live_checksum_that_does_not_match_is_a_checksum_break():
    # The same recording with one update's size changed on the way: OKX's checksum no longer matches.
    venue = Okx(["UNI-USD-SWAP"], contract_sizes={"UNI-USD-SWAP": 1.0})
    venue.configure_depth(DepthConfig(sample_s=1.0))
    lines = recorded(GOLDEN / "okx" / "books_live.jsonl")[:3]
    rows = []
    for seq, line in enumerate(lines, start=1):
        msg = orjson.loads(line["frame"])
        item = msg["data"][0]
        item["seqId"], item["prevSeqId"] = seq, (-1 if msg["action"] == "snapshot" else seq - 1)
        if seq == 3:
            item["asks"][0][1] = str(int(item["asks"][0][1]) + 1)
        rows += venue.parse(orjson.dumps(msg), at(line["recv"])).rows
    gaps = [r for r in rows if isinstance(r, GapEvent)]
    assert [(g.stream, g.cause) for g in gaps] == [("depth", "checksum")]


def test_bybit_live_orderbook_snapshot_and_delta_give_the_venues_book():
    # tardis.dev's recording of Bybit v5 `orderbook.50.BTCUSDT` (same message format as the `.200` topic the
    # adapter subscribes; the topic is renamed on the way in, the only change): a snapshot, then a delta that
    # adds a bid and deletes levels the 1-level snapshot never held.
    venue = Bybit(["BTCUSDT"])
    venue.configure_depth(DepthConfig(sample_s=0.0))
    rows = []
    for line in (GOLDEN / "bybit" / "orderbook_live.jsonl").read_text().splitlines():
        rows += venue.parse(line.replace("orderbook.50.", "orderbook.200."), at(1680652809)).rows
    assert not [r for r in rows if isinstance(r, GapEvent | Rejection)]
    book = venue.depth.book("BTCUSDT")
    assert book.bids == {28162.57: 0.07562, 28161.04: 0.177474} and book.asks == {28162.58: 0.506829}
    assert book.update_id == 59438061
    last = [r for r in rows if isinstance(r, BookDepth)][-1]
    assert last.mid == (28162.57 + 28162.58) / 2 and last.bid_10bps == 28162.57 * 0.07562 + 28161.04 * 0.177474


def test_hyperliquid_live_l2book_gives_exact_bands_and_an_empty_book_is_no_sample():
    # tardis.dev's recording of Hyperliquid `l2Book`: SHIA's book empty on both sides, BANANA's two levels a side.
    venue = Hyperliquid(["SHIA", "BANANA"])
    venue.configure_depth(DepthConfig(sample_s=1.0))
    rows = []
    for line in (GOLDEN / "hyperliquid" / "l2book_live.jsonl").read_text().splitlines():
        rows += venue.parse(line, at(1730160008)).rows
    assert not [r for r in rows if isinstance(r, GapEvent | Rejection)]  # an empty book is no sample, not bad
    samples = [r for r in rows if isinstance(r, BookDepth)]
    assert [s.symbol for s in samples] == ["BANANA"]
    s = samples[0]
    assert s.mid == (59.8 + 59.811) / 2 and (s.bid_levels, s.ask_levels) == (2, 2)
    assert s.bid_10bps == 59.8 * 3.4 + 59.778 * 1.6 and s.ask_10bps == 59.811 * 2.9 + 59.832 * 17.6
    assert s.ts == at(1730160007.687)
