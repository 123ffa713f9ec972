"""Bybit v5 linear perpetuals: publicTrade, orderbook.1, tickers and allLiquidation topics per symbol on
the public linear stream, with the JSON ping Bybit asks clients to send about every 20 s; with depth on,
also the 200-level book (`orderbook.200`: a snapshot, then deltas with consecutive `u`).

Linear contracts are quoted in base units (one contract = one coin), so no size conversion is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Literal

import httpx
import msgspec
import orjson
from pydantic import Field, ValidationError

from ingest.depth import DepthConfig
from ingest.rows import BookL1, Derivs, Liquidation, Trade, from_ms
from ingest.venues.base import (
    VALIDATION_ERRORS,
    BackfillPage,
    Frame,
    FrameId,
    FrameMs,
    FrameNonNegative,
    FramePositive,
    FundingRate,
    Gap,
    ListedInstrument,
    Message,
    NonNegative,
    Parsed,
    Positive,
    Recent,
    Route,
    Venue,
    VenueId,
    VenueMs,
    rest_answer,
    validate,
    validation_reason,
)

MAINNET = "wss://stream.bybit.com/v5/public/linear"
TESTNET = "wss://stream-testnet.bybit.com/v5/public/linear"
REST_MAINNET = "https://api.bybit.com"
REST_TESTNET = "https://api-testnet.bybit.com"
RECENT_TRADES = 1000  # what GET /v5/market/recent-trade returns at most (linear): the only history there is
INSTRUMENTS_PAGE = 1000  # the documented maximum `limit` of instruments-info
TOPICS = ("publicTrade", "orderbook.1", "tickers", "allLiquidation")
# Depth book: linear offers 50 levels every 20 ms, 200 every 100 ms, 1000 every 200 ms. 200 reaches about four
# times as far as 50 at a fifth of the message rate (samples are taken every second at most anyway); 1000 would
# double the bytes per delta again for levels mostly beyond the 100 bps band on liquid symbols.
DEPTH_LEVELS = 200
DEPTH_TOPIC = f"orderbook.{DEPTH_LEVELS}"
ARGS_PER_FRAME = 10  # the documented cap on args in one subscribe request
MAX_TOPICS_PER_CONNECTION = 200  # well inside the 21,000-character args limit per connection
PING = b'{"req_id":"ping","op":"ping"}'
DEFAULT_FUNDING_INTERVAL = timedelta(hours=8)  # until a ticker says fundingIntervalHour
TRADE_DEDUP_WINDOW = 20_000
LIQUIDATION_MEMORY = 512


class TradeItem(Frame):
    T: FrameMs
    s: str
    S: Literal["Buy", "Sell"]  # the taker's side
    v: FramePositive
    p: FramePositive
    i: str


class TradesMsg(Frame):
    data: list[TradeItem]


class RecentTradeItem(Message):
    """One item of GET /v5/market/recent-trade: publicTrade's fields under their REST names."""

    execId: str
    symbol: str
    price: Positive
    size: Positive
    side: Literal["Buy", "Sell"]
    time: VenueMs


class BookData(Frame):
    s: str
    b: list[tuple[FramePositive, FrameNonNegative]]
    a: list[tuple[FramePositive, FrameNonNegative]]
    u: FrameId


class BookMsg(Frame):
    """One message validated in one pass: cheaper than validating its parts separately."""

    type: Literal["snapshot", "delta"]
    ts: FrameMs
    data: BookData
    cts: FrameMs | None = None  # the matching engine's time of this book state


class TopicOf(Frame):
    """Just the topic of a message (msgspec skips the rest unread), to pick its decoder."""

    topic: str


TOPIC = msgspec.json.Decoder(TopicOf)
# Trades and level-1 books decoded and validated in one pass per topic kind. A message that fails here
# (or any other topic) takes the general path, which rejects just the bad part and says why.
HOT_TOPICS = {
    "publicTrade": msgspec.json.Decoder(TradesMsg, strict=False),
    "orderbook.1": msgspec.json.Decoder(BookMsg, strict=False),
}


class DepthData(Message):
    s: str
    b: list[tuple[Positive, NonNegative]]  # [price, size in coins]; size 0 in a delta deletes the level
    a: list[tuple[Positive, NonNegative]]
    u: VenueId  # consecutive per delta; 1 on the snapshot after a venue-side restart


class DepthMsg(Message):
    type: Literal["snapshot", "delta"]
    ts: VenueMs
    cts: VenueMs | None = None
    data: DepthData


class TickerData(Message):
    """A snapshot has every field; a delta only the ones that changed."""

    symbol: str
    markPrice: Positive | None = None
    indexPrice: Positive | None = None
    fundingRate: FundingRate | None = None
    nextFundingTime: VenueMs | None = None
    openInterest: NonNegative | None = None
    fundingIntervalHour: Annotated[int, Field(ge=1, le=24)] | None = None  # 1, 2, 4 or 8 in practice


TICKER_FIELDS = {"markPrice", "indexPrice", "fundingRate", "nextFundingTime", "openInterest", "fundingIntervalHour"}


class TickerMsg(Message):
    ts: VenueMs
    data: TickerData


class LiquidationItem(Message):
    T: VenueMs
    s: str
    S: Literal["Buy", "Sell"]  # the side of the liquidated *position*: Buy = a long was liquidated
    v: Positive
    p: Positive


def _apply(level: tuple[float, float] | None, entries: list[tuple[float, float]]) -> tuple[float, float] | None:
    """One side of a level-1 book after a message's entries, in order: size 0 deletes that price, any
    other size makes that price the best level."""
    for px, qty in entries:
        if qty != 0:
            level = (px, qty)
        elif level is not None and level[0] == px:
            level = None
    return level


class PriceFilter(Message):
    tickSize: Positive


class LinearInstrument(Message):
    """One entry of GET /v5/market/instruments-info?category=linear `result.list`."""

    symbol: str
    contractType: str  # LinearPerpetual, LinearFutures
    status: str  # Trading, PreLaunch, Delivering, Closed
    baseCoin: str
    quoteCoin: str
    priceFilter: PriceFilter | None = None


class InstrumentsPage(Message):
    list: list[LinearInstrument]
    nextPageCursor: str = ""


class InstrumentsAnswer(Message):
    retCode: int
    retMsg: str = ""
    result: InstrumentsPage | None = None


class Bybit(Venue):
    name = "bybit"
    example_symbols = ("BTCUSDT", "ETHUSDT")
    heartbeat_s = 20.0  # Bybit asks for a ping about every 20 s
    idle_close_s = 60.0  # not documented by Bybit: a conservative bound for the ping setting
    has_rest = True  # the instrument list, recent trades for gaps
    rest_mainnet = REST_MAINNET
    rest_testnet = REST_TESTNET
    # Best effort: trade ids (execId) are not sequential, so there are no id gaps, and REST keeps only the
    # last 1000 trades. A gap with a time window (from_ts, to_ts) gets what of it those 1000 still hold.
    no_backfill = None

    def __init__(
        self,
        symbols: list[str],
        ws_url: str | None = None,
        testnet: bool = False,
        heartbeat_s: float | None = None,
        max_topics: int = MAX_TOPICS_PER_CONNECTION,
        derivs: bool = True,
        rest_url: str | None = None,
    ) -> None:
        super().__init__([s.upper() for s in symbols], heartbeat_s, ws_url=ws_url, testnet=testnet, rest_url=rest_url)
        self.url = ws_url or (TESTNET if testnet else MAINNET)
        self.max_topics = max_topics
        self.topics = TOPICS if derivs else TOPICS[:2]
        self.known = set(self.symbols)
        self.book: dict[str, list] = {}  # symbol -> [bid level, ask level, last u]
        self.last_trade_ms: dict[str, int] = {}
        self.seen_trades = Recent(TRADE_DEDUP_WINDOW)
        self.tickers: dict[str, dict[str, float | int]] = {}  # symbol -> merged ticker state
        self.recent_liquidations = Recent(LIQUIDATION_MEMORY)

    def instrument(self, symbol: str) -> tuple[str, str]:
        for quote in ("USDT", "USDC", "PERP"):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return symbol[: -len(quote)], "USDC" if quote == "PERP" else quote
        return symbol, "USDT"

    def heartbeat(self) -> bytes | None:
        return PING

    def backfill_url(self, gap: Gap, cursor: str | None) -> str | None:
        if cursor is not None or gap.from_ts is None or gap.to_ts is None:  # one page is all there is
            return None
        return f"{self.rest_root}/v5/market/recent-trade?category=linear&symbol={gap.symbol}&limit={RECENT_TRADES}"

    def parse_backfill(self, gap: Gap, body: bytes, recv_ts: datetime) -> BackfillPage:
        msg = orjson.loads(body)
        result = msg.get("result") if isinstance(msg, dict) else None
        if not isinstance(result, dict) or msg.get("retCode") != 0 or not isinstance(result.get("list"), list):
            raise ValueError(f"recent-trade: {str(msg)[:200]}")
        assert gap.from_ts is not None and gap.to_ts is not None  # backfill_url asked only for windows
        lo, hi = gap.from_ts.timestamp() * 1000, gap.to_ts.timestamp() * 1000
        page = BackfillPage()
        oldest = None
        for item in result["list"]:
            try:
                t = RecentTradeItem.model_validate(item)
            except ValidationError as exc:
                raise ValueError(f"recent-trade: {validation_reason(exc)}") from exc
            oldest = t.time if oldest is None else min(oldest, t.time)
            if lo <= t.time <= hi:  # the boundary trades themselves are stored already: dedup drops them
                side = "buy" if t.side == "Buy" else "sell"
                page.trades.append(
                    Trade(self.name, gap.symbol, from_ms(t.time), recv_ts, t.execId, t.price, t.size, side, "rest")
                )
        page.reaches_start = oldest is not None and oldest <= lo
        return page

    async def listed_instruments(self, client: httpx.AsyncClient) -> list[ListedInstrument]:
        """Linear perpetuals from GET /v5/market/instruments-info?category=linear, page by page (cursor)."""
        listed, cursor = [], ""
        while True:
            params = {"category": "linear", "limit": str(INSTRUMENTS_PAGE)} | ({"cursor": cursor} if cursor else {})
            url = f"{self.rest_root}/v5/market/instruments-info"
            answer = rest_answer(await client.get(url, params=params), InstrumentsAnswer)
            if answer.retCode != 0 or answer.result is None:
                raise ValueError(f"Bybit says {answer.retCode}: {answer.retMsg}")
            listed += [
                ListedInstrument(
                    i.symbol,
                    i.baseCoin,
                    i.quoteCoin,
                    1.0,
                    i.priceFilter.tickSize if i.priceFilter else None,
                    i.status,
                    i.status == "Trading",
                )
                for i in answer.result.list
                if i.contractType == "LinearPerpetual"
            ]
            if not answer.result.nextPageCursor or answer.result.nextPageCursor == cursor:
                return listed
            cursor = answer.result.nextPageCursor

    def configure_depth(self, config: DepthConfig) -> None:
        # Levels beyond the subscribed 200 are not kept up to date by the venue: never measure more than that.
        super().configure_depth(replace(config, max_levels=min(config.max_levels, DEPTH_LEVELS)))

    def depth_resync(self, symbol: str) -> list[bytes]:
        """Unsubscribe and subscribe again: Bybit answers a subscribe with a fresh snapshot."""
        topic = [f"{DEPTH_TOPIC}.{symbol}"]
        return [
            orjson.dumps({"req_id": f"resync-{op}-{symbol}", "op": op, "args": topic})
            for op in ("unsubscribe", "subscribe")
        ]

    def routes(self) -> list[Route]:
        kinds = (*self.topics, DEPTH_TOPIC) if self.depth is not None else self.topics
        topics = [f"{t}.{s}" for s in self.symbols for t in kinds]
        routes = []
        for shard, start in enumerate(range(0, len(topics), self.max_topics)):
            chunk = topics[start : start + self.max_topics]
            frames = tuple(
                orjson.dumps({"req_id": f"sub-{shard}-{i}", "op": "subscribe", "args": chunk[i : i + ARGS_PER_FRAME]})
                for i in range(0, len(chunk), ARGS_PER_FRAME)
            )
            routes.append(Route(f"linear-{shard}", self.url, tuple(chunk), frames))
        return routes

    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        try:
            kind, _, symbol = TOPIC.decode(frame).topic.rpartition(".")
            hot = HOT_TOPICS[kind].decode(frame) if symbol in self.known else None
        except (msgspec.MsgspecError, KeyError):
            hot = None
        if hot is None:
            return self._parse_other(frame, recv_ts)
        if type(hot) is TradesMsg:
            out = Parsed(live=True)
            for i, t in enumerate(hot.data):
                self._trade_row(symbol, t, out, recv_ts, lambda i=i: orjson.dumps(orjson.loads(frame)["data"][i]))
            return out
        return self._book_row(symbol, hot, frame, recv_ts)  # type: ignore[arg-type]

    def _parse_other(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        """Everything but a valid trade or book message: tickers, liquidations, control, bad input."""
        msg, bad = self.decode(frame, recv_ts)
        if bad is not None:
            return bad
        if not isinstance(msg, dict):
            return Parsed([self.reject(recv_ts, None, None, "not_an_object", frame)])
        topic = msg.get("topic")
        if isinstance(topic, str):
            kind, _, symbol = topic.rpartition(".")
            if symbol not in self.known:
                return Parsed([self.reject(recv_ts, kind or None, symbol, "unknown_symbol", frame)])
            data = msg.get("data")
            if kind == "publicTrade":
                return self._trades(symbol, data, frame, recv_ts)
            if kind == "orderbook.1":
                return self._book(symbol, msg, frame, recv_ts)
            if kind == DEPTH_TOPIC and self.depth is not None:
                return self._depth(symbol, msg, frame, recv_ts)
            if kind == "tickers":
                return self._ticker(symbol, msg, frame, recv_ts)
            if kind == "allLiquidation":
                return self._liquidations(symbol, data, frame, recv_ts)
            return Parsed([self.reject(recv_ts, kind, symbol, "unknown_topic", frame)])
        op = msg.get("op")
        if op == "subscribe":
            if msg.get("success") is True:
                return Parsed(acked=1)
            return Parsed(error=f"subscribe refused: {msg.get('ret_msg')!s}"[:500])
        if op in ("ping", "pong"):
            return Parsed()
        if op == "unsubscribe":
            return Parsed()
        return Parsed([self.reject(recv_ts, None, None, "unknown_message", frame)])

    def _trades(self, symbol: str, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        if not isinstance(data, list):
            return Parsed([self.reject(recv_ts, "publicTrade", symbol, "invalid: data: not a list", frame)])
        out = Parsed(live=True)
        for item in data:
            if (t := self.validated(TradeItem, item, out, recv_ts, "publicTrade", symbol)) is not None:
                self._trade_row(symbol, t, out, recv_ts, lambda item=item: orjson.dumps(item))
        return out

    def _trade_row(self, symbol: str, t: TradeItem, out: Parsed, recv_ts: datetime, raw: Callable[[], bytes]) -> None:
        """One trade of a message; a rejection stores that trade as it came (`raw()`, built only then)."""
        if t.s != symbol:
            out.rows.append(self.reject(recv_ts, "publicTrade", t.s, "symbol_mismatch", raw()))
            return
        if (symbol, t.i) in self.seen_trades:
            self.counters["duplicate"] += 1
            return
        if t.T < self.last_trade_ms.get(symbol, 0):
            out.rows.append(self.reject(recv_ts, "publicTrade", symbol, "out_of_order", raw()))
            return
        self.seen_trades.add(symbol, t.i)
        self.last_trade_ms[symbol] = t.T
        side = "buy" if t.S == "Buy" else "sell"
        out.rows.append(Trade(self.name, symbol, from_ms(t.T), recv_ts, t.i, t.p, t.v, side))
        self.counters["trades"] += 1

    def _book(self, symbol: str, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        try:
            m = validate(BookMsg, msg)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "orderbook.1", symbol, validation_reason(exc), frame)])
        return self._book_row(symbol, m, frame, recv_ts)

    def _book_row(self, symbol: str, m: BookMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        b, kind, venue_ms = m.data, m.type, m.cts if m.cts is not None else m.ts
        state = self.book.get(symbol)
        if kind == "snapshot":
            # Bybit's rule: a snapshot replaces the local book, whatever its u (after a venue-side restart
            # numbering starts again lower). Only an unchanged re-snapshot (every 3 s) is not a new row.
            bid, ask = _apply(None, b.b), _apply(None, b.a)
            if state is not None and state == [bid, ask, b.u]:
                self.counters["duplicate"] += 1
                return Parsed(live=True)
        elif state is None or b.u <= state[2]:
            self.counters["duplicate" if state is not None else "delta_before_snapshot"] += 1
            return Parsed(live=True)
        else:
            # A delta may delete the old best and name the new one in the same message: apply every entry.
            bid, ask = _apply(state[0], b.b), _apply(state[1], b.a)
        self.book[symbol] = [bid, ask, b.u]
        if bid is None or ask is None:
            self.counters["one_sided"] += 1  # after a level-1 delete, until the next level arrives
            return Parsed(live=True)
        if bid[0] >= ask[0]:
            return Parsed([self.reject(recv_ts, "orderbook.1", symbol, "crossed_book", frame)], live=True)
        self.counters["books"] += 1
        return Parsed(
            [BookL1(self.name, symbol, from_ms(venue_ms), recv_ts, bid[0], bid[1], ask[0], ask[1], b.u)], live=True
        )

    def _depth(self, symbol: str, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        """Bybit's rules: a snapshot resets the book (whatever its u: after a restart u starts again at 1), each
        delta's u is the previous one + 1; size 0 deletes a level. A jump in u is a break: resubscribe."""
        assert self.depth is not None
        try:
            m = DepthMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, DEPTH_TOPIC, symbol, validation_reason(exc), frame)])
        d = m.data
        if d.s != symbol:
            return Parsed([self.reject(recv_ts, DEPTH_TOPIC, d.s, "symbol_mismatch", frame)])
        ts = from_ms(m.cts if m.cts is not None else m.ts)
        book = self.depth.book(symbol)
        out = Parsed(live=True)
        if m.type == "snapshot":
            book.reset(d.b, d.a, ts, recv_ts, d.u)
        elif not book.synced:
            if not book.resyncing:  # e.g. found crossed at a sampling tick: ask for a snapshot now
                book.resyncing = True
                out.resync.append(symbol)
            self.counters["depth.delta_unsynced"] += 1
            return out
        elif book.update_id is not None and d.u <= book.update_id:
            self.counters["duplicate"] += 1
            return out
        elif book.update_id is not None and d.u != book.update_id + 1:
            out.rows.append(self.depth_break(book, symbol, "seq_break", recv_ts, from_id=book.update_id, to_id=d.u))
            book.resyncing = True
            out.resync.append(symbol)
            return out
        else:
            book.apply(d.b, d.a, ts, recv_ts, d.u)
        self.depth_sample(symbol, book, out)
        return out

    def _ticker(self, symbol: str, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        data = msg.get("data")
        if isinstance(data, dict) and "" in data.values():  # Bybit sends "" for a field it has no value for now
            msg = {**msg, "data": {k: v for k, v in data.items() if v != ""}}
        try:
            m = TickerMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "tickers", symbol, validation_reason(exc), frame)])
        t, venue_ms = m.data, m.ts
        changed = t.model_dump(include=TICKER_FIELDS, exclude_none=True)
        # A snapshot is the whole state; a delta changes the fields it names (Bybit's documented model).
        state = self.tickers[symbol] = (
            changed if msg.get("type") == "snapshot" else {**self.tickers.get(symbol, {}), **changed}
        )
        if not changed.keys() - {"fundingIntervalHour"}:
            return Parsed(live=True)  # a delta of last price or volume only: nothing of ours changed
        self.counters["derivs"] += 1
        hours = state.get("fundingIntervalHour")
        funding_interval = timedelta(hours=hours) if hours else DEFAULT_FUNDING_INTERVAL
        # Every row carries the full current state, so each one pairs a mark with its index (the basis).
        next_funding = state.get("nextFundingTime")
        return Parsed(
            [
                Derivs(
                    self.name,
                    symbol,
                    from_ms(venue_ms),
                    recv_ts,
                    mark_px=state.get("markPrice"),
                    index_px=state.get("indexPrice"),
                    funding_rate=state.get("fundingRate"),
                    funding_interval=funding_interval if "fundingRate" in state else None,
                    next_funding_ts=from_ms(next_funding) if next_funding else None,
                    open_interest=state.get("openInterest"),
                )
            ],
            live=True,
        )

    def _liquidations(self, symbol: str, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        if not isinstance(data, list):
            return Parsed([self.reject(recv_ts, "allLiquidation", symbol, "invalid: data: not a list", frame)])
        out = Parsed(live=True)
        for item in data:
            if (liq := self.validated(LiquidationItem, item, out, recv_ts, "allLiquidation", symbol)) is None:
                continue
            # A liquidated long is closed by a forced sell, a liquidated short by a forced buy.
            side = "sell" if liq.S == "Buy" else "buy"
            if not self.recent_liquidations.first_time(symbol, (liq.T, side, liq.p, liq.v)):
                self.counters["duplicate"] += 1
                continue
            out.rows.append(Liquidation(self.name, symbol, from_ms(liq.T), recv_ts, side, liq.p, liq.v))
            self.counters["liquidations"] += 1
        return out
