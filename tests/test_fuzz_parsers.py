"""Fuzzing every venue parser: whatever arrives on the wire, no exception escapes, and each frame ends
as rows the database will accept, a quarantined rejection with a reason, or a recognised control
message (ack, venue error, pong, dropped duplicate, ignored channel).

Profiles: `ci` (default, quick) and `soak` (HYPOTHESIS_PROFILE=soak, 100k examples per test).
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.rows import BookL1, Derivs, GapEvent, Liquidation, Rejection, Trade
from ingest.sim import bybit_server as by
from ingest.sim import okx_server as ok
from ingest.sim.binance_server import agg_trade, book_ticker, force_order, mark_price
from ingest.sim.hyperliquid_server import asset_ctx, bbo, trade
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=100_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

RECV = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MS = 1_764_072_000_000
INT64 = 2**63 - 1

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "-1", "0", "1e400", "", "BTCUSDT", "BTC", "B", "A", "true"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def binance_templates() -> list[dict]:
    return [
        agg_trade("BTCUSDT", 7, "91000.5", "0.25", MS, buyer_is_maker=True),
        book_ticker("ETHUSDT", 9, "3000.1", "4", "3000.2", "5", MS),
        {"stream": "btcusdt@aggTrade", "data": agg_trade("BTCUSDT", 8, "91001", "1", MS + 1, False)},
        mark_price("BTCUSDT", "91000.5", "91000", "0.0001", MS + 3600_000, MS),
        force_order("ETHUSDT", "SELL", "2990", "1.5", MS),
        {"result": None, "id": 1},
    ]


def hyperliquid_templates() -> list[dict]:
    return [
        {
            "channel": "trades",
            "data": [trade("BTC", "B", "91000", "0.5", MS, 11), trade("ETH", "A", "3000", "2", MS, 12)],
        },
        {"channel": "bbo", "data": bbo("ETH", MS, ("3000.1", "4"), ("3000.2", "5"))},
        {"channel": "activeAssetCtx", "data": asset_ctx("BTC", "91001", "91000", "0.0000125", "2500.5")},
        {"channel": "subscriptionResponse", "data": {"method": "subscribe"}},
        {"channel": "pong"},
    ]


def bybit_templates() -> list[dict]:
    return [
        by.public_trade("BTCUSDT", [("Buy", "91000", "0.5", MS, "t1"), ("Sell", "90999", "1", MS, "t2")], MS),
        by.orderbook("BTCUSDT", "snapshot", ("91000", "3"), ("91000.5", "2"), 100, MS),
        by.orderbook("ETHUSDT", "delta", None, ("3000.2", "0"), 7, MS),
        by.ticker(
            "BTCUSDT",
            MS,
            markPrice="91001",
            indexPrice="91000",
            fundingRate="0.0001",
            nextFundingTime=str(MS + 3600_000),
            openInterest="52000",
            fundingIntervalHour="8",
        ),
        by.ticker("ETHUSDT", MS, kind="delta", openInterest="1000"),
        by.liquidation("BTCUSDT", "Buy", "90900", "0.8", MS),
        {"success": True, "ret_msg": "", "conn_id": "c", "req_id": "1", "op": "subscribe"},
    ]


def okx_templates() -> list[dict]:
    btc = "BTC-USDT-SWAP"
    return [
        ok.trade(btc, "1", "91000", "5", "buy", MS),
        ok.bbo(btc, ("91000", "340"), ("91000.1", "12"), MS, 9),
        ok.mark_price(btc, "91012", MS),
        ok.index_ticker("BTC-USDT", "91000", MS),
        ok.funding_rate(btc, "0.0002", MS + 3600_000, MS + 5 * 3600_000, MS),
        ok.open_interest(btc, "2216113", MS),
        ok.liquidation(btc, "sell", "90500", "30", MS),
        {"event": "subscribe", "arg": {"channel": "trades", "instId": btc}, "connId": "x"},
        {"event": "error", "code": "60018", "msg": "bad"},
    ]


@st.composite
def mutated(draw, templates: list[dict]) -> bytes:
    """A valid frame with one part deleted, retyped or replaced, possibly truncated."""
    msg = json.loads(json.dumps(draw(st.sampled_from(templates))))
    target = msg["data"] if isinstance(msg.get("data"), dict) and draw(st.booleans()) else msg
    if isinstance(target.get("data"), list) and target["data"] and draw(st.booleans()):
        target = draw(st.sampled_from(target["data"]))
    keys = sorted(target)
    if keys:
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["delete", "replace", "nest"]))
        if action == "delete":
            del target[key]
        elif action == "replace":
            target[key] = draw(json_values)
        else:
            target[key] = [target[key], draw(json_values)]
    raw = json.dumps(msg).encode()  # stdlib: also writes NaN, Infinity and >64-bit integers, as a bad peer might
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def frames(templates: list[dict]):
    return mutated(templates) | st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())


def check_rows(venue, frame: bytes, before: int) -> None:
    parsed = venue.parse(frame, RECV)
    counted = sum(venue.counters.values()) > before
    # live with no rows: market data that carried nothing (an empty trades list).
    assert parsed.rows or parsed.acked or parsed.error is not None or counted or parsed.live or _is_pong(frame), (
        f"frame neither stored, quarantined nor recognised: {frame!r}"
    )
    for row in parsed.rows:
        if isinstance(row, Rejection):
            assert row.reason and row.raw is not None and "\x00" not in row.raw
            for label in (row.stream, row.symbol):  # text columns: anything else would refuse the batch
                assert label is None or (isinstance(label, str) and "\x00" not in label)
        elif isinstance(row, Trade):
            assert row.symbol in venue.symbols and row.side in ("buy", "sell")
            assert math.isfinite(row.price) and row.price > 0 and math.isfinite(row.qty) and row.qty > 0
            assert row.ts.tzinfo is not None and row.trade_id
        elif isinstance(row, Derivs):
            # What ops.raw_derivs' CHECK constraint requires.
            assert row.symbol in venue.symbols and row.ts.tzinfo is not None
            for v in (row.mark_px, row.index_px, row.funding_rate, row.open_interest):
                assert v is None or math.isfinite(v)
            assert (row.mark_px is None or row.mark_px > 0) and (row.index_px is None or row.index_px > 0)
            assert row.open_interest is None or row.open_interest >= 0
            assert row.funding_interval is None or row.funding_interval.total_seconds() > 0
            assert row.funding_rate is None or abs(row.funding_rate) <= 1
        elif isinstance(row, Liquidation):
            assert row.symbol in venue.symbols and row.side in ("buy", "sell")
            assert math.isfinite(row.price) and row.price > 0 and math.isfinite(row.qty) and row.qty > 0
        elif isinstance(row, BookL1):
            assert row.symbol in venue.symbols
            for v in (row.bid_px, row.ask_px, row.bid_qty, row.ask_qty):
                assert math.isfinite(v)
            # What ops.raw_book_l1's CHECK constraints require: a refused row would hold up its whole batch.
            assert row.bid_px > 0 and row.ask_px > 0 and row.bid_qty >= 0 and row.ask_qty >= 0
            assert row.bid_px < row.ask_px
            assert row.update_id is None or -INT64 <= row.update_id <= INT64
        else:
            assert isinstance(row, GapEvent)


def _is_pong(frame: bytes) -> bool:
    """Control frames that need no answer and carry nothing: pongs, unsubscribe confirmations, notices."""
    if frame == b"pong":  # OKX
        return True
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and (
        msg.get("channel") == "pong" or msg.get("op") in ("ping", "pong", "unsubscribe") or "event" in msg
    )


@given(frame=frames(binance_templates()))
def test_binance_parser_survives_any_frame(frame):
    venue = Binance(["BTCUSDT", "ETHUSDT"])
    venue.parse(orjson.dumps(agg_trade("BTCUSDT", 6, "91000", "1", MS - 1, False)), RECV)  # some state
    check_rows(venue, frame, sum(venue.counters.values()))


@given(frame=frames(hyperliquid_templates()))
def test_hyperliquid_parser_survives_any_frame(frame):
    venue = Hyperliquid(["BTC", "ETH"])
    venue.parse(orjson.dumps({"channel": "trades", "data": [trade("BTC", "B", "90999", "1", MS - 1, 10)]}), RECV)
    check_rows(venue, frame, sum(venue.counters.values()))


@given(frame=frames(bybit_templates()))
def test_bybit_parser_survives_any_frame(frame):
    venue = Bybit(["BTCUSDT", "ETHUSDT"])
    venue.parse(orjson.dumps(by.orderbook("BTCUSDT", "snapshot", ("90999", "1"), ("91001", "1"), 50, MS - 1)), RECV)
    check_rows(venue, frame, sum(venue.counters.values()))


@given(frame=frames(okx_templates()) | st.just(b"pong"))
def test_okx_parser_survives_any_frame(frame):
    venue = Okx(["BTC-USDT-SWAP", "ETH-USDT-SWAP"], contract_sizes={"BTC-USDT-SWAP": 0.01})  # ETH: size unknown
    venue.parse(orjson.dumps(ok.trade("BTC-USDT-SWAP", "0", "90999", "1", "buy", MS - 1)), RECV)
    check_rows(venue, frame, sum(venue.counters.values()))


def test_a_hostile_symbol_in_a_frame_is_quarantined_not_stored():
    venue = Binance(["BTCUSDT"])
    hostile = "BTCUSDT'; DROP TABLE ops.raw_trades;--"
    parsed = venue.parse(orjson.dumps(agg_trade(hostile, 1, "91000", "1", MS, False)), RECV)
    assert [(type(r), r.reason) for r in parsed.rows] == [(Rejection, "unknown_symbol")]
    assert parsed.rows[0].raw.count(hostile) == 1  # kept verbatim as data, for the operator
