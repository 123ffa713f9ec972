"""Golden frames: messages recorded from the live venues (tests/golden/, sources in its README) go through the
venue adapters, and exactly the rows the venue's documented semantics imply come out. Each sequence gets a
fresh adapter and its frames in order; a few sequences also go through the loopback servers into the database."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ingest.depth import DepthConfig
from ingest.rows import Rejection, Row
from ingest.sim.binance_server import BinanceServer
from ingest.sim.bybit_server import BybitServer
from ingest.sim.hyperliquid_server import HyperliquidServer
from ingest.sim.okx_server import OkxServer
from ingest.sim.server import LoopbackServer
from ingest.venues import REGISTRY
from ingest.venues.base import Parsed, Poll, Venue
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx
from tests.support.ingest_helpers import running, wait_until

GOLDEN = Path(__file__).parent / "golden"
SEQUENCES = sorted(GOLDEN.glob("*/*.expected.json"))


def frames_of(expected_path: Path) -> list[str]:
    """The recorded frames, one a line; a line holding a JSON string is a text frame (greeting, pong)."""
    lines = expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl")).read_text().splitlines()
    return [decoded if isinstance(decoded := json.loads(line), str) else line for line in lines]


def adapter(spec: dict) -> Venue:
    extra = {"contract_sizes": spec["contract_sizes"]} if "contract_sizes" in spec else {}
    venue = REGISTRY[spec["venue"]](spec["symbols"], **extra)
    if spec.get("depth"):  # full books, sampled with the default settings
        venue.configure_depth(DepthConfig())
    return venue


def ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def as_expected(row: Row, venue: str, recv_ts: datetime) -> dict:
    """A row in the corpus's notation: times as epoch ms, intervals in hours; venue and recv_ts checked here."""
    out: dict = {"row": type(row).__name__}
    for f in fields(row):
        value = getattr(row, f.name)
        if f.name in ("venue", "recv_ts"):
            assert value == (venue if f.name == "venue" else recv_ts), f"{f.name} of {row}"
        elif f.name == "source":  # every row of a streamed (or polled) frame is a stream row, never a backfill
            assert value == "ws", f"source of {row}"
        elif f.name == "detected_at" or (isinstance(row, Rejection) and f.name == "raw"):
            continue
        elif f.name == "funding_interval":
            out["funding_interval_h"] = None if value is None else value / timedelta(hours=1)
        elif isinstance(value, datetime):
            out[f.name] = ms(value)
        else:
            out[f.name] = value
    return out


def same(actual: object, expected: object) -> bool:
    if isinstance(expected, float | int) and isinstance(actual, float) and not isinstance(expected, bool):
        return math.isclose(actual, expected, rel_tol=1e-12)  # OKX sizes are contracts x ctVal
    return actual == expected


def check_row(actual: dict, expected: dict) -> None:
    expected = dict(expected)
    prefix = expected.pop("reason_starts", None)
    if prefix is not None:  # a validation failure: its kind and field, not pydantic's wording
        assert str(actual.get("reason")).startswith(prefix), actual
        actual = {k: v for k, v in actual.items() if k != "reason"}
    assert actual.keys() == expected.keys(), (actual, expected)
    assert all(same(actual[k], expected[k]) for k in expected), (actual, expected)


def check_result(got: Parsed, expected: dict, venue: str, recv_ts: datetime, where: str) -> None:
    assert (got.live, got.acked, got.error, got.resync) == (
        expected["live"],
        expected.get("acked", 0),
        expected.get("error"),
        expected.get("resync", []),
    ), where
    rows = [as_expected(r, venue, recv_ts) for r in got.rows]
    assert len(rows) == len(expected["rows"]), f"{where}: {rows}"
    for actual, want in zip(rows, expected["rows"], strict=True):
        check_row(actual, want)


@pytest.mark.parametrize("path", SEQUENCES, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}")
def test_recorded_frames_give_exactly_the_expected_rows(path: Path):
    spec = json.loads(path.read_text())
    venue = adapter(spec)
    recv_ts = datetime.fromtimestamp(spec["recv_ts_ms"] / 1000, UTC)
    frames = frames_of(path)
    assert len(frames) == len(spec["results"]), "one expected result per recorded frame"
    poll = Poll(spec["poll"], "", 1.0) if "poll" in spec else None
    for n, (frame, expected) in enumerate(zip(frames, spec["results"], strict=True), 1):
        got = venue.parse_poll(poll, frame.encode(), recv_ts) if poll else venue.parse(frame, recv_ts)
        check_result(got, expected, spec["venue"], recv_ts, f"{path.name} frame {n}")


def test_every_venue_and_channel_has_golden_frames():
    channels = {
        "binance": ("aggTrade", "bookTicker", "markPriceUpdate", "forceOrder", '"result"', "openInterest"),
        "hyperliquid": ("trades", "bbo", "activeAssetCtx", "subscriptionResponse", "pong", "error", "established"),
        "bybit": ("publicTrade", "orderbook.1", "tickers", "allLiquidation", '"subscribe"', '"pong"'),
        "okx": (
            "trades",
            "bbo-tbt",
            '"books"',
            "mark-price",
            "index-tickers",
            "funding-rate",
            "open-interest",
            "liquidation-orders",
            '"subscribe"',
            '"error"',
            '"pong"',
        ),
    }
    for venue, names in channels.items():
        text = "".join(p.read_text() for p in (GOLDEN / venue).glob("*.jsonl"))
        assert [n for n in names if n not in text] == [], venue


class RecordedRest(LoopbackServer):
    """Answers plain HTTP GETs with recorded response bodies, by path."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        super().__init__()
        self.bodies = bodies

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        body = self.bodies.get(request.path.split("?", 1)[0])
        if body is None:
            return connection.respond(404, "not found")
        response = connection.respond(200, body.decode())
        response.headers["Content-Type"] = "application/json"
        return response

    @property
    def root(self) -> str:
        return self.url.replace("ws://", "http://").rstrip("/")


async def test_okx_contract_sizes_come_from_the_recorded_instrument_list():
    body = (GOLDEN / "okx/instruments_swap.json").read_bytes()
    server = await RecordedRest({"/api/v5/public/instruments": body}).start()
    try:
        okx = Okx(["BTC-USDT-SWAP", "WNCG-USDT-SWAP", "SOS-USDT-SWAP", "BTC-USD-SWAP"], rest_url=server.root)
        await okx.prepare({})
    finally:
        await server.stop()
    # ctVal of the linear swaps; the inverse BTC-USD-SWAP counts USD, so it gets no base-unit size.
    assert okx.contract_sizes == {"BTC-USDT-SWAP": 0.01, "WNCG-USDT-SWAP": 1.0, "SOS-USDT-SWAP": 1_000_000.0}
    # The sizes the golden OKX sequences use are these.
    for path in (GOLDEN / "okx").glob("*.expected.json"):
        for symbol, size in json.loads(path.read_text()).get("contract_sizes", {}).items():
            assert okx.contract_sizes.get(symbol, size) == size, path.name


async def test_binance_funding_intervals_come_from_the_recorded_funding_info():
    server = await RecordedRest({"/fapi/v1/fundingInfo": (GOLDEN / "binance/funding_info.json").read_bytes()}).start()
    try:
        binance = Binance(["BLZUSDT", "BTCUSDT"], rest_url=server.root)
        await binance.prepare({})
    finally:
        await server.stop()
    assert binance.funding_intervals == {"BLZUSDT": timedelta(hours=8)}  # only listed symbols; BTCUSDT: default


# End to end: recorded frames through the real loopback servers and the real ingest service into the database.


async def test_binance_recording_lands_in_the_database(conn, db_dsn, tmp_path):
    server = await BinanceServer().start()
    try:
        async with running(db_dsn, [Binance(["SUSHIUSDT"], ws_url=server.root, derivs=False)], tmp_path):
            await server.wait_subscribed("sushiusdt@aggTrade")
            await server.wait_subscribed("sushiusdt@bookTicker")
            for stream, name in (("sushiusdt@aggTrade", "agg_trade"), ("sushiusdt@bookTicker", "book_ticker")):
                for frame in frames_of(GOLDEN / f"binance/{name}.expected.json"):
                    # The recording used the combined-stream wrapper; a /ws connection gets the payload alone.
                    await server.publish_raw(stream, orjson.dumps(orjson.loads(frame)["data"]).decode())
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 4)
            await wait_until(conn, "SELECT count(*) FROM ops.feed_gaps", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 5)
    finally:
        await server.stop()
    trades = await conn.fetch("SELECT trade_id, price, qty, side FROM ops.raw_trades ORDER BY trade_id")
    assert [tuple(r) for r in trades] == [
        ("87353230", 7.612, 297.0, "buy"),
        ("87353231", 7.612, 1.0, "sell"),
        ("87353232", 7.613, 1.0, "buy"),
        ("87353233", 7.614, 173.0, "buy"),
        ("87353235", 7.616, 20.0, "sell"),
    ]
    gap = await conn.fetchrow("SELECT from_id, to_id, missing, cause FROM ops.feed_gaps")
    assert tuple(gap) == (87353233, 87353235, 1, "id_jump")
    books = await conn.fetch("SELECT bid_qty, update_id FROM ops.raw_book_l1 ORDER BY update_id")
    assert [tuple(r) for r in books] == [
        (2.0, 600859600576),
        (6.0, 600859603936),
        (7.0, 600859632276),
        (23.0, 600859633461),
    ]


async def test_hyperliquid_recording_lands_in_the_database(conn, db_dsn, tmp_path):
    server = await HyperliquidServer().start()
    try:
        async with running(db_dsn, [Hyperliquid(["BTC", "FXS", "MOODENG"], ws_url=server.url)], tmp_path):
            for kind, coin in (("trades", "BTC"), ("trades", "FXS"), ("activeAssetCtx", "MOODENG")):
                await server.wait_subscribed(kind, coin)
            for frame in frames_of(GOLDEN / "hyperliquid/trades.expected.json"):
                await server.publish_raw(f"trades:{orjson.loads(frame)['data'][0]['coin']}", frame)
            for frame in frames_of(GOLDEN / "hyperliquid/asset_ctx.expected.json"):
                await server.publish_raw("activeAssetCtx:MOODENG", frame)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 6)
    finally:
        await server.stop()
    trades = await conn.fetch("SELECT symbol, trade_id, qty, side FROM ops.raw_trades ORDER BY ts, trade_id")
    assert [tuple(r) for r in trades] == [
        ("BTC", "1016375172059570", 0.38111, "buy"),
        ("BTC", "229986151112628", 0.83613, "buy"),
        ("BTC", "479312521152049", 0.33458, "buy"),
        ("BTC", "696560709859024", 0.00714, "buy"),
        ("FXS", "611279506717453", 10.5, "sell"),
        ("FXS", "809065877559592", 9.1, "sell"),
    ]
    ctx = await conn.fetchrow("SELECT mark_px, index_px, funding_rate, open_interest FROM ops.raw_derivs")
    assert tuple(ctx) == (0.19963, 0.1995, 0.00004863, 18617460.0)
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0  # the greeting is not one


async def test_bybit_recording_lands_in_the_database(conn, db_dsn, tmp_path):
    server = await BybitServer().start()
    try:
        async with running(db_dsn, [Bybit(["BTCUSDT"], ws_url=server.url)], tmp_path):
            await server.wait_subscribed("orderbook.1.BTCUSDT")
            await server.wait_subscribed("tickers.BTCUSDT")
            for name in ("orderbook_multi_entry", "tickers"):
                for frame in frames_of(GOLDEN / f"bybit/{name}.expected.json"):
                    await server.publish_raw(orjson.loads(frame)["topic"], frame)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 2)
    finally:
        await server.stop()
    books = await conn.fetch("SELECT bid_px, bid_qty, ask_px, ask_qty, update_id FROM ops.raw_book_l1 ORDER BY ts")
    assert [tuple(r) for r in books] == [
        (27994.6, 1.0, 27994.8, 1.0, 1188471),
        (27991.7, 0.777, 27994.4, 0.058, 1188472),
    ]
    derivs = await conn.fetchrow("SELECT mark_px, index_px, funding_rate, open_interest FROM ops.raw_derivs")
    assert tuple(derivs) == (28552.81, 28562.25, 0.0001, 52774.528)


async def test_okx_recording_lands_in_the_database(conn, db_dsn, tmp_path):
    server = await OkxServer().start()
    try:
        okx = Okx(["BTC-USDT-SWAP"], ws_url=server.url, rest_url=server.rest_url, derivs=False)
        async with running(db_dsn, [okx], tmp_path):
            await server.wait_subscribed("trades:BTC-USDT-SWAP")
            await server.wait_subscribed("bbo-tbt:BTC-USDT-SWAP")
            for name, key in (("trades", "trades:BTC-USDT-SWAP"), ("bbo_tbt", "bbo-tbt:BTC-USDT-SWAP")):
                for frame in frames_of(GOLDEN / f"okx/{name}.expected.json"):
                    await server.publish_raw(key, frame)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_book_l1", 1)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
    finally:
        await server.stop()
    trade = await conn.fetchrow("SELECT trade_id, price, qty, side FROM ops.raw_trades")
    assert tuple(trade) == ("148266905", 48938.5, pytest.approx(0.05), "buy")
    book = await conn.fetchrow("SELECT bid_px, bid_qty, ask_px, ask_qty FROM ops.raw_book_l1")
    assert tuple(book) == (38632.3, pytest.approx(9.9), 38632.4, pytest.approx(7.27))
