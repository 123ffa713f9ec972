"""The hot-path message models (msgspec Structs) keep the edge as strict as the pydantic models were: NaN,
infinite, negative and zero prices or sizes, times past 2100 and missing fields become rejections with
the field named, and the good parts of a batch still count."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.rows import BookL1, Derivs, Rejection, Trade, from_ms
from ingest.sim.binance_server import agg_trade, book_ticker, mark_price
from ingest.sim.hyperliquid_server import asset_ctx, bbo, trade
from ingest.venues.binance import Binance
from ingest.venues.hyperliquid import Hyperliquid

RECV = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MS = 1_764_072_000_000
PAST_2100 = 4_102_444_800_001
BOOK = book_ticker("BTCUSDT", 3, "1", "1", "2", "1", MS)

BAD_VALUES = [("NaN", "invalid"), ("-1", "invalid"), ("0", "invalid"), ("1e400", "invalid"), ("Infinity", "invalid")]


def _only_rejection(parsed) -> Rejection:
    assert len(parsed.rows) == 1 and isinstance(parsed.rows[0], Rejection), parsed.rows
    return parsed.rows[0]


@pytest.mark.parametrize("field", ["p", "q"])
@pytest.mark.parametrize(("value", "kind"), BAD_VALUES)
def test_binance_trade_with_an_impossible_number_is_rejected_naming_the_field(field, value, kind):
    frame = orjson.dumps({**agg_trade("BTCUSDT", 7, "91000.5", "0.25", MS, True), field: value})
    rejection = _only_rejection(Binance(["BTCUSDT"]).parse(frame, RECV))
    assert rejection.reason.startswith(f"{kind}: {field}: "), rejection.reason
    assert (rejection.stream, rejection.symbol, rejection.raw) == ("aggTrade", "BTCUSDT", frame.decode())


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({k: v for k, v in agg_trade("BTCUSDT", 7, "1", "1", MS, True).items() if k != "a"}, "missing_field: a: "),
        (agg_trade("BTCUSDT", 7, "1", "1", PAST_2100, True, event_ms=MS), "invalid: T: "),
        ({**agg_trade("BTCUSDT", 7, "1", "1", MS, True), "a": -3}, "invalid: a: "),
        ({**agg_trade("BTCUSDT", 7, "1", "1", MS, True), "a": 2**63}, "invalid: a: "),
        ({**agg_trade("BTCUSDT", 7, "1", "1", MS, True), "s": 5}, "invalid: s: "),
        ({**BOOK, "b": "NaN"}, "invalid: b: "),
        ({k: v for k, v in BOOK.items() if k != "A"}, "missing_field: A: "),
        (mark_price("BTCUSDT", "91000", "91000", "1.5", MS, MS), "invalid: r: "),
        (mark_price("BTCUSDT", "91000", "NaN", "0.0001", MS, MS), "invalid: i: "),
    ],
)
def test_binance_hot_frames_reject_what_the_pydantic_models_rejected(frame, reason):
    rejection = _only_rejection(Binance(["BTCUSDT"]).parse(orjson.dumps(frame), RECV))
    assert rejection.reason.startswith(reason), rejection.reason


def test_binance_good_hot_frames_still_give_their_rows():
    venue = Binance(["BTCUSDT"])
    rows = [
        *venue.parse(orjson.dumps(agg_trade("BTCUSDT", 7, "91000.5", "0.25", MS, True)), RECV).rows,
        *venue.parse(orjson.dumps(book_ticker("BTCUSDT", 3, "91000.4", "3", "91000.6", "2", MS)), RECV).rows,
        *venue.parse(orjson.dumps(mark_price("BTCUSDT", "91010", "91000", "0.0001", MS + 1, MS)), RECV).rows,
    ]
    assert [type(r) for r in rows] == [Trade, BookL1, Derivs]
    assert (rows[0].price, rows[0].qty, rows[0].side, rows[0].trade_id) == (91000.5, 0.25, "sell", "7")
    assert (rows[1].bid_px, rows[1].ask_qty, rows[1].update_id) == (91000.4, 2.0, 3)
    assert (rows[2].mark_px, rows[2].funding_rate, rows[2].next_funding_ts) == (91010.0, 0.0001, from_ms(MS + 1))


@pytest.mark.parametrize(("value", "kind"), BAD_VALUES)
def test_hyperliquid_batch_rejects_only_the_bad_trade_and_keeps_it_as_sent(value, kind):
    good, bad = trade("BTC", "B", "91000", "0.5", MS, 1), {**trade("BTC", "A", "91000", "0.5", MS, 2), "px": value}
    parsed = Hyperliquid(["BTC"]).parse(orjson.dumps({"channel": "trades", "data": [good, bad]}), RECV)
    trades = [r for r in parsed.rows if isinstance(r, Trade)]
    (rejection,) = [r for r in parsed.rows if isinstance(r, Rejection)]
    assert [t.trade_id for t in trades] == ["1"]
    assert rejection.reason.startswith(f"{kind}: px: ") and orjson.loads(rejection.raw) == bad


def test_hyperliquid_unknown_coin_in_a_valid_batch_is_stored_as_the_trade_that_came():
    other = trade("DOGE", "B", "0.1", "10", MS, 5)
    parsed = Hyperliquid(["BTC"]).parse(
        orjson.dumps({"channel": "trades", "data": [trade("BTC", "B", "91000", "0.5", MS, 1), other]}), RECV
    )
    assert [type(r) for r in parsed.rows] == [Trade, Rejection]
    assert parsed.rows[1].reason == "unknown_symbol" and orjson.loads(parsed.rows[1].raw) == other


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"channel": "bbo", "data": bbo("BTC", MS, ("NaN", "1"), ("91001", "2"))}, "invalid: bbo.0.px: "),
        ({"channel": "bbo", "data": bbo("BTC", PAST_2100, ("91000", "1"), ("91001", "2"))}, "invalid: time: "),
        (
            {"channel": "activeAssetCtx", "data": asset_ctx("BTC", "91000", "-1", "0.0001", "10")},
            "invalid: ctx.oraclePx: ",
        ),
        ({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {}}}, "missing_field: ctx.markPx: "),
    ],
)
def test_hyperliquid_books_and_contexts_reject_impossible_values_naming_the_field(message, reason):
    rejection = _only_rejection(Hyperliquid(["BTC"]).parse(orjson.dumps(message), RECV))
    assert rejection.reason.startswith(reason), rejection.reason
