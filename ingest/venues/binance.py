"""Binance USD-M futures: aggTrade, markPrice@1s and forceOrder on the /market route, bookTicker and the
diff-depth stream (full books, with REST snapshots) on the /public route, open interest from REST (the only
place Binance publishes it).

Since the 2026 base-URL split a stream asked for on the wrong route is silently never delivered,
so every stream name is tied to its route here and nowhere else.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

import httpx
import msgspec
import orjson
from pydantic import Field, ValidationError

from ingest.depth import DepthBook, DepthConfig
from ingest.rows import BookL1, Derivs, GapEvent, Liquidation, Trade, from_ms
from ingest.venues.base import (
    VALIDATION_ERRORS,
    BackfillPage,
    Frame,
    FrameFunding,
    FrameId,
    FrameMs,
    FramePositive,
    Gap,
    ListedInstrument,
    Message,
    NonNegative,
    Parsed,
    Poll,
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

log = logging.getLogger("ingest.binance")

MAINNET = "wss://fstream.binance.com"
TESTNET = "wss://fstream.binancefuture.com"
REST_MAINNET = "https://fapi.binance.com"
REST_TESTNET = "https://testnet.binancefuture.com"
# Most USD-M perps pay every 8 h; markPrice does not say which. REST fundingInfo lists the symbols with
# another interval (4 h, 1 h), read at start; 8 h for the rest.
FUNDING_INTERVAL = timedelta(hours=8)
# REST request weight per minute spent on open interest (weight 1 per symbol and call). The IP limit is
# 2400/min and is shared with anything else on the same address: take 5 % of it by default.
OI_WEIGHT_PER_MIN = 120
IP_WEIGHT_LIMIT = 2400  # per minute and IP, shared by every REST caller on the address
OI_MIN_INTERVAL_S = 5.0  # no point asking more often: a minute's OI change needs a few samples, not 60
# The documented limit is 1024 streams per connection; staying well under it keeps one connection's
# message rate (and the damage of one disconnect) small.
MAX_STREAMS_PER_CONNECTION = 200
# An aggTrade shard of quiet symbols can go minutes without a print while its books keep moving.
QUIET_TRADES_FACTOR = 10.0
# Connections by purpose: (label, route, streams per symbol, quiet factor). Liquidations are rare, so
# they ride with markPrice@1s, which ticks every second and keeps the watchdog fed.
CONNECTIONS = (
    ("aggTrade", "market", ("aggTrade",), QUIET_TRADES_FACTOR),
    ("bookTicker", "public", ("bookTicker",), 1.0),
    ("derivs", "market", ("markPrice@1s", "forceOrder"), 1.0),
)
# Full books: diffs every 100 ms on /public, synced with a REST snapshot of the top 1000 levels per side
# (GET /fapi/v1/depth limit=1000: request weight 20). A connection of its own: it is the busiest stream.
DEPTH_CONNECTION = ("depth", "public", ("depth@100ms",), 1.0)
DEPTH_SNAPSHOT_LEVELS = 1000
# Diffs held per symbol while its snapshot is on the way (100 s of 100 ms events); older ones are dropped,
# which at worst makes the snapshot look older than the buffer and asks for another.
DEPTH_BUFFER = 1000
LIQUIDATION_MEMORY = 512  # recent forced orders per symbol, to drop the ones an overlapping connection repeats
BACKFILL_PAGE = 1000  # aggTrades per REST page, the documented maximum


class AggTradeMsg(Frame, tag_field="e", tag="aggTrade"):
    E: FrameMs
    s: str
    a: FrameId
    p: FramePositive
    q: FramePositive
    T: FrameMs
    m: bool


class BookTickerMsg(Frame, tag_field="e", tag="bookTicker"):
    u: FrameId
    E: FrameMs
    T: FrameMs
    s: str
    b: FramePositive
    B: FramePositive
    a: FramePositive
    A: FramePositive


class MarkPriceMsg(Frame, tag_field="e", tag="markPriceUpdate"):
    E: FrameMs
    s: str
    p: FramePositive
    i: FramePositive
    r: FrameFunding
    T: FrameMs


# The hot frames in one pass: msgspec reads the tag `e` and decodes straight into the right Struct. Anything
# else (acks, errors, liquidations, the combined-stream wrapper, a bad frame) fails here and takes the
# general path, which says what it is.
HOT_FRAMES = msgspec.json.Decoder(AggTradeMsg | BookTickerMsg | MarkPriceMsg, strict=False)


class ForceOrderDetail(Message):
    s: str
    S: Literal["BUY", "SELL"]
    q: Positive
    p: Positive
    ap: NonNegative = 0.0  # average fill price; 0 until something filled
    z: NonNegative = 0.0  # filled quantity so far
    T: VenueMs


class ForceOrderMsg(Message):
    E: VenueMs
    o: ForceOrderDetail


class HistoryAggTrade(Message):
    """One item of GET /fapi/v1/aggTrades: the stream's aggTrade without the event fields."""

    a: VenueId
    p: Positive
    q: Positive
    T: VenueMs
    m: bool


DepthLevel = tuple[Positive, NonNegative]  # [price, size]: size 0 removes the level


class DepthUpdateMsg(Message):
    """One `<symbol>@depth@100ms` event: absolute sizes of the levels that changed between update ids U and u;
    `pu` is the `u` of the symbol's previous event (the chain a missed event breaks)."""

    E: VenueMs
    T: VenueMs
    s: str
    U: VenueId
    u: VenueId
    pu: int
    b: list[DepthLevel]
    a: list[DepthLevel]


class DepthSnapshotMsg(Message):
    """GET /fapi/v1/depth: the top levels per side as of update id `lastUpdateId`."""

    lastUpdateId: VenueId
    E: VenueMs
    T: VenueMs
    bids: list[DepthLevel]
    asks: list[DepthLevel]


class OpenInterestMsg(Message):
    symbol: str
    openInterest: NonNegative
    time: VenueMs


class FundingInfoMsg(Message):
    symbol: str
    fundingIntervalHours: Annotated[int, Field(ge=1, le=24)]


class PriceFilter(Message):
    filterType: str
    tickSize: Positive | None = None


class ExchangeSymbol(Message):
    """One entry of GET /fapi/v1/exchangeInfo `symbols` (USD-M: perpetuals and delivery contracts)."""

    symbol: str
    contractType: str  # PERPETUAL, CURRENT_QUARTER, ... ("" for a delisted one)
    status: str  # TRADING, PENDING_TRADING, SETTLING, CLOSE, ...
    baseAsset: str
    quoteAsset: str
    filters: list[PriceFilter] = []


class ExchangeInfo(Message):
    symbols: list[ExchangeSymbol]


class Binance(Venue):
    name = "binance"
    example_symbols = ("BTCUSDT", "ETHUSDT")
    rotate_after_s = 23 * 3600  # Binance closes every connection at 24 h: rotate (overlap, then switch) at 23 h
    has_rest = True  # open interest polls, funding intervals, the instrument list
    rest_mainnet = REST_MAINNET
    rest_testnet = REST_TESTNET
    rest_uses = "the instrument check, open-interest polls, funding intervals (fundingInfo) and depth books"
    # GET /fapi/v1/aggTrades?fromId= pages forward by aggregate id, 1000 a page, weight 20. Backfill and
    # depth snapshots (weight 20 each) share 480 of the IP's 2400 weight a minute (24 requests), beside the
    # 120 of the OI polls.
    no_backfill = None
    backfill_weight = 20
    rest_weight_per_min = 480
    depth_snapshot_weight = 20  # GET /fapi/v1/depth?limit=1000

    def __init__(
        self,
        symbols: list[str],
        ws_url: str | None = None,
        testnet: bool = False,
        max_streams: int = MAX_STREAMS_PER_CONNECTION,
        derivs: bool = True,
        rest_url: str | None = None,
        oi_weight_per_min: int = OI_WEIGHT_PER_MIN,
        oi_min_interval_s: float = OI_MIN_INTERVAL_S,
    ) -> None:
        super().__init__([s.upper() for s in symbols], ws_url=ws_url, testnet=testnet, rest_url=rest_url)
        self.root = (ws_url or (TESTNET if testnet else MAINNET)).rstrip("/")
        self.max_streams = max_streams
        self.derivs = derivs
        self.oi_weight_per_min = oi_weight_per_min
        self.oi_min_interval_s = oi_min_interval_s
        self.known = set(self.symbols)
        self.last_agg: dict[str, tuple[int, int]] = {}  # symbol -> (last a, last T)
        self.last_book: dict[str, tuple[int, int]] = {}  # symbol -> (last u, last T)
        self.last_mark: dict[str, int] = {}  # symbol -> last E
        self.last_oi: dict[str, int] = {}  # symbol -> last time
        self.funding_intervals: dict[str, timedelta] = {}  # symbols whose interval is not 8 h
        self.recent_liquidations = Recent(LIQUIDATION_MEMORY)
        # Depth sync (Binance's "manage a local order book" rules): diffs held while a symbol's snapshot is
        # fetched, and the snapshot's lastUpdateId while its first diff (U <= lastUpdateId <= u) is awaited.
        self.depth_buffer: dict[str, deque[DepthUpdateMsg]] = {}
        self.depth_first: dict[str, int] = {}
        self._request_id = 0

    def instrument(self, symbol: str) -> tuple[str, str]:
        for quote in ("USDT", "USDC", "BUSD", "USD"):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return symbol[: -len(quote)], quote
        return symbol, "USDT"

    def configure_depth(self, config: DepthConfig) -> None:
        # A Binance book is synced from a REST snapshot: without a REST root it could never be, so there is
        # none (the no-REST notice, `rest_uses`, names depth books among what is off).
        if self.rest_root is not None:
            super().configure_depth(config)

    def routes(self) -> list[Route]:
        routes = []
        connections = CONNECTIONS + ((DEPTH_CONNECTION,) if self.depth is not None else ())
        for label, route, streams, quiet in connections:
            if label == "derivs" and not self.derivs:
                continue
            names = [f"{s.lower()}@{stream}" for s in self.symbols for stream in streams]
            for shard, start in enumerate(range(0, len(names), self.max_streams)):
                chunk = tuple(names[start : start + self.max_streams])
                self._request_id += 1
                subscribe = orjson.dumps({"method": "SUBSCRIBE", "params": list(chunk), "id": self._request_id})
                routes.append(
                    Route(
                        f"{route}-{label}-{shard}", f"{self.root}/{route}/ws", chunk, (subscribe,), stale_factor=quiet
                    )
                )
        return routes

    def polls(self) -> list[Poll]:
        """Open interest per symbol from REST, spread so the whole set stays inside the weight budget."""
        if not self.derivs or self.oi_weight_per_min <= 0 or self.rest_root is None:
            return []
        every_s = max(self.oi_min_interval_s, 60.0 * len(self.symbols) / self.oi_weight_per_min)
        return [
            Poll(f"openInterest:{s}", f"{self.rest_root}/fapi/v1/openInterest?symbol={s}", every_s)
            for s in self.symbols
        ]

    async def prepare(self, stored_sizes: Mapping[str, float]) -> None:
        """Funding intervals that differ from 8 h (GET /fapi/v1/fundingInfo, weight 1, once at start)."""
        if not self.derivs or self.rest_root is None:
            return
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"{self.rest_root}/fapi/v1/fundingInfo")
                response.raise_for_status()
            for item in orjson.loads(response.content):
                info = FundingInfoMsg.model_validate(item)
                if info.symbol in self.known:
                    self.funding_intervals[info.symbol] = timedelta(hours=info.fundingIntervalHours)
        except (httpx.HTTPError, OSError, orjson.JSONDecodeError, ValidationError, TypeError) as exc:
            log.warning(
                "binance: cannot read funding intervals from %s (%s); assuming 8 h for all symbols", self.rest_root, exc
            )

    async def listed_instruments(self, client: httpx.AsyncClient) -> list[ListedInstrument]:
        """Perpetuals from GET /fapi/v1/exchangeInfo (weight 1); delivery contracts are left out."""
        info = rest_answer(await client.get(f"{self.rest_root}/fapi/v1/exchangeInfo"), ExchangeInfo)
        return [
            ListedInstrument(
                s.symbol,
                s.baseAsset,
                s.quoteAsset,
                1.0,
                next((f.tickSize for f in s.filters if f.filterType == "PRICE_FILTER"), None),
                s.status,
                s.status == "TRADING",
            )
            for s in info.symbols
            if s.contractType == "PERPETUAL"
        ]

    def share_rest_budget(self, workers: int) -> None:
        super().share_rest_budget(workers)
        self.oi_weight_per_min = max(1, self.oi_weight_per_min // workers)

    def poll_pause(self, headers: Mapping[str, str]) -> float:
        # X-MBX-USED-WEIGHT-1M is the whole IP's weight this minute, ours and anybody else's: near the
        # limit, wait for the next minute rather than risk a 429 (and a 418 ban after repeated ones).
        try:
            used = int(headers.get("x-mbx-used-weight-1m", "0"))
        except ValueError:
            return 0.0
        return 60.0 - time.time() % 60 + 1 if used >= 0.9 * IP_WEIGHT_LIMIT else 0.0

    def backfill_url(self, gap: Gap, cursor: str | None) -> str | None:
        if gap.from_id is None or gap.to_id is None:  # only id gaps can be asked for by id
            return None
        start = int(cursor) if cursor is not None else gap.from_id + 1
        if start >= gap.to_id:
            return None
        return f"{self.rest_root}/fapi/v1/aggTrades?symbol={gap.symbol}&fromId={start}&limit={BACKFILL_PAGE}"

    def parse_backfill(self, gap: Gap, body: bytes, recv_ts: datetime) -> BackfillPage:
        items = orjson.loads(body)
        if not isinstance(items, list):
            raise ValueError(f"aggTrades: expected a list, got {str(items)[:200]}")
        page = BackfillPage()
        last = None
        for item in items:
            try:
                t = HistoryAggTrade.model_validate(item)
            except ValidationError as exc:
                raise ValueError(f"aggTrades: {validation_reason(exc)}") from exc
            last = t.a
            if gap.from_id < t.a < gap.to_id:  # type: ignore[operator]  # backfill_url asked by id
                side = "sell" if t.m else "buy"
                page.trades.append(
                    Trade(self.name, gap.symbol, from_ms(t.T), recv_ts, str(t.a), t.p, t.q, side, source="rest")
                )
        # A short page is not the end: the venue may cap pages lower. An empty one is.
        if last is not None and last + 1 < gap.to_id:  # type: ignore[operator]
            page.next_cursor = str(last + 1)
        return page

    def parse_poll(self, poll: Poll, body: bytes, recv_ts: datetime) -> Parsed:
        msg, bad = self.decode(body, recv_ts)
        if bad is not None:
            return bad
        try:
            oi = OpenInterestMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed(
                [self.reject(recv_ts, "openInterest", poll.name.split(":", 1)[1], validation_reason(exc), body)]
            )
        if oi.symbol not in self.known:
            return Parsed([self.reject(recv_ts, "openInterest", oi.symbol, "unknown_symbol", body)])
        if oi.time <= self.last_oi.get(oi.symbol, -1):  # not updated since the last poll
            return Parsed(live=True)
        self.last_oi[oi.symbol] = oi.time
        self.counters["derivs"] += 1
        return Parsed(
            [Derivs(self.name, oi.symbol, from_ms(oi.time), recv_ts, open_interest=oi.openInterest)], live=True
        )

    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        try:
            hot = HOT_FRAMES.decode(frame)
        except msgspec.MsgspecError:
            return self._parse_other(frame, recv_ts)
        kind = type(hot)
        if kind is AggTradeMsg:
            return self._agg_trade_row(hot, frame, recv_ts)  # type: ignore[arg-type]
        if kind is BookTickerMsg:
            return self._book_ticker_row(hot, frame, recv_ts)  # type: ignore[arg-type]
        return self._mark_price_row(hot, frame, recv_ts)  # type: ignore[arg-type]

    def _parse_other(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        """Everything but a valid hot frame: control messages, liquidations, the wrapper, bad input."""
        msg, bad = self.decode(frame, recv_ts)
        if bad is not None:
            return bad
        if not isinstance(msg, dict):
            return Parsed([self.reject(recv_ts, None, None, "not_an_object", frame)])
        if "data" in msg and "stream" in msg:  # combined-stream wrapper (query mode)
            msg = msg["data"]
            if not isinstance(msg, dict):
                return Parsed([self.reject(recv_ts, None, None, "not_an_object", frame)])
        event = msg.get("e")
        if event == "aggTrade":
            return self._agg_trade(msg, frame, recv_ts)
        if event == "bookTicker":
            return self._book_ticker(msg, frame, recv_ts)
        if event == "depthUpdate":
            return self._depth_update(msg, frame, recv_ts)
        if event == "markPriceUpdate":
            return self._mark_price(msg, frame, recv_ts)
        if event == "forceOrder":
            return self._force_order(msg, frame, recv_ts)
        if "id" in msg and "result" in msg:
            return Parsed(acked=1)
        if "error" in msg:
            return Parsed(error=str(msg["error"])[:500])
        return Parsed([self.reject(recv_ts, None, msg.get("s"), f"unknown_event: {event!r}"[:100], frame)])

    def _agg_trade(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            t = validate(AggTradeMsg, msg)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "aggTrade", symbol, validation_reason(exc), frame)])
        return self._agg_trade_row(t, frame, recv_ts)

    def _agg_trade_row(self, t: AggTradeMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        if t.s not in self.known:
            return Parsed([self.reject(recv_ts, "aggTrade", t.s, "unknown_symbol", frame)])
        out = Parsed(live=True)
        last = self.last_agg.get(t.s)
        if last is not None:
            last_a, last_t = last
            if t.a <= last_a:  # replayed by an overlapping connection: already have it
                self.counters["duplicate"] += 1
                return out
            if t.T < last_t:
                out.rows.append(self.reject(recv_ts, "aggTrade", t.s, "out_of_order", frame))
                return out
            if t.a != last_a + 1:
                self.counters["gap"] += 1
                out.rows.append(
                    GapEvent(
                        self.name,
                        t.s,
                        "aggTrade",
                        last_a,
                        t.a,
                        t.a - last_a - 1,
                        from_ms(last_t),
                        from_ms(t.T),
                        "id_jump",
                    )
                )
        self.last_agg[t.s] = (t.a, t.T)
        # m: the buyer was the maker, so the aggressor sold.
        out.rows.append(Trade(self.name, t.s, from_ms(t.T), recv_ts, str(t.a), t.p, t.q, "sell" if t.m else "buy"))
        self.counters["trades"] += 1
        return out

    def _book_ticker(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            b = validate(BookTickerMsg, msg)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "bookTicker", symbol, validation_reason(exc), frame)])
        return self._book_ticker_row(b, frame, recv_ts)

    def _book_ticker_row(self, b: BookTickerMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        if b.s not in self.known:
            return Parsed([self.reject(recv_ts, "bookTicker", b.s, "unknown_symbol", frame)])
        if b.b >= b.a:
            return Parsed([self.reject(recv_ts, "bookTicker", b.s, "crossed_book", frame)], live=True)
        out = Parsed(live=True)
        last = self.last_book.get(b.s)
        if last is not None:
            if b.u <= last[0]:
                self.counters["duplicate"] += 1
                return out
            if b.T < last[1]:
                out.rows.append(self.reject(recv_ts, "bookTicker", b.s, "out_of_order", frame))
                return out
        self.last_book[b.s] = (b.u, b.T)
        out.rows.append(BookL1(self.name, b.s, from_ms(b.T), recv_ts, b.b, b.B, b.a, b.A, b.u))
        self.counters["books"] += 1
        return out

    def _mark_price(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            m = validate(MarkPriceMsg, msg)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "markPrice", symbol, validation_reason(exc), frame)])
        return self._mark_price_row(m, frame, recv_ts)

    def _mark_price_row(self, m: MarkPriceMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        if m.s not in self.known:
            return Parsed([self.reject(recv_ts, "markPrice", m.s, "unknown_symbol", frame)])
        last = self.last_mark.get(m.s)
        if last is not None and m.E <= last:  # the overlap of a rotation, or late: the newer one is stored
            self.counters["duplicate"] += 1
            return Parsed(live=True)
        self.last_mark[m.s] = m.E
        self.counters["derivs"] += 1
        return Parsed(
            [
                Derivs(
                    self.name,
                    m.s,
                    from_ms(m.E),
                    recv_ts,
                    mark_px=m.p,
                    index_px=m.i,
                    funding_rate=m.r,
                    funding_interval=self.funding_intervals.get(m.s, FUNDING_INTERVAL),
                    next_funding_ts=from_ms(m.T) if m.T else None,
                )
            ],
            live=True,
        )

    def _force_order(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        inner = msg.get("o")
        symbol = inner.get("s") if isinstance(inner, dict) else None
        try:
            f = ForceOrderMsg.model_validate(msg).o
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "forceOrder", symbol, validation_reason(exc), frame)])
        if f.s not in self.known:
            return Parsed([self.reject(recv_ts, "forceOrder", f.s, "unknown_symbol", frame)])
        # What actually traded when anything did (average price, filled size), else the order itself.
        price, qty = (f.ap, f.z) if f.ap > 0 and f.z > 0 else (f.p, f.q)
        side = "buy" if f.S == "BUY" else "sell"
        if not self.recent_liquidations.first_time(f.s, (f.T, side, price, qty)):
            self.counters["duplicate"] += 1
            return Parsed(live=True)
        self.counters["liquidations"] += 1
        return Parsed([Liquidation(self.name, f.s, from_ms(f.T), recv_ts, side, price, qty)], live=True)

    # -- depth books ---------------------------------------------------------------------------------

    def depth_snapshot_url(self, symbol: str) -> str | None:
        if self.depth is None or self.rest_root is None:
            return None
        return f"{self.rest_root}/fapi/v1/depth?symbol={symbol}&limit={DEPTH_SNAPSHOT_LEVELS}"

    def parse_depth_snapshot(self, symbol: str, body: bytes, recv_ts: datetime) -> Parsed:
        """The snapshot, then the diffs held meanwhile: those with u < lastUpdateId are older and dropped, the
        first one applied must span it (U <= lastUpdateId <= u) or follow it (pu == lastUpdateId). A snapshot
        older than every held diff says nothing about what came between: `resync` asks for another."""
        assert self.depth is not None, "parse_depth_snapshot without configure_depth"
        try:
            snap = DepthSnapshotMsg.model_validate_json(body)
        except ValidationError as exc:
            raise ValueError(validation_reason(exc)) from None
        book = self.depth.book(symbol)
        out = Parsed(live=True)
        held = self.depth_buffer.pop(symbol, deque())
        pending = [d for d in held if d.u >= snap.lastUpdateId]
        self.counters["depth.dropped_before_snapshot"] += len(held) - len(pending)
        if pending and pending[0].U > snap.lastUpdateId and pending[0].pu != snap.lastUpdateId:
            self.counters["depth.snapshot_behind"] += 1
            self.depth_buffer[symbol] = deque(pending, maxlen=DEPTH_BUFFER)
            book.resyncing = True
            out.resync.append(symbol)
            return out
        book.reset(snap.bids, snap.asks, from_ms(snap.T), recv_ts, snap.lastUpdateId)
        self.depth_first[symbol] = snap.lastUpdateId
        self.counters["depth.snapshots"] += 1
        for n, diff in enumerate(pending):
            self._apply_depth(symbol, book, diff, recv_ts, out, sample=False)
            if not book.synced:  # a break while catching up: what is left waits for the next snapshot
                self._hold(symbol, pending[n + 1 :])
                return out
        self.depth_sample(symbol, book, out)  # the caught-up book, once
        return out

    def _depth_update(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            d = DepthUpdateMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "depth", symbol, validation_reason(exc), frame)])
        if d.s not in self.known:
            return Parsed([self.reject(recv_ts, "depth", d.s, "unknown_symbol", frame)])
        out = Parsed(live=True)
        if self.depth is None:  # not subscribed by us (depth off): nothing to keep
            return out
        book = self.depth.book(d.s)
        if book.synced:
            self._apply_depth(d.s, book, d, recv_ts, out)
        else:
            self._hold(d.s, (d,))
            if not book.resyncing:  # the first diff of a book without a snapshot (at start, after a break)
                book.resyncing = True
                out.resync.append(d.s)
        return out

    def _apply_depth(
        self, symbol: str, book: DepthBook, d: DepthUpdateMsg, recv_ts: datetime, out: Parsed, sample: bool = True
    ) -> None:
        """One diff on a synced book, or the break it reveals (the diff is then held for the next snapshot)."""
        first = self.depth_first.get(symbol)
        if first is not None:  # the first diff after the snapshot must span its lastUpdateId (U <= it <= u)
            if d.u < first:
                return
            # pu == lastUpdateId: the diff follows the snapshot's state directly (the pu chain's own rule);
            # it happens when the snapshot is as of the last diff before the held ones.
            if d.U > first and d.pu != first:
                return self._depth_break(symbol, book, d, first, recv_ts, out)
            del self.depth_first[symbol]
        elif d.u <= book.update_id:  # type: ignore[operator]  # a synced book has one
            self.counters["duplicate"] += 1  # an overlapping connection (rotation) delivers it again
            return
        elif d.pu != book.update_id:
            return self._depth_break(symbol, book, d, book.update_id, recv_ts, out)
        book.apply(d.b, d.a, from_ms(d.T), recv_ts, d.u)
        self.counters["depth"] += 1
        if sample:
            self.depth_sample(symbol, book, out)

    def _depth_break(
        self, symbol: str, book: DepthBook, d: DepthUpdateMsg, last_id: int | None, recv_ts: datetime, out: Parsed
    ) -> None:
        out.rows.append(self.depth_break(book, symbol, "seq_break", recv_ts, from_id=last_id, to_id=d.U))
        self.depth_first.pop(symbol, None)
        self._hold(symbol, (d,))
        book.resyncing = True
        out.resync.append(symbol)

    def _hold(self, symbol: str, diffs) -> None:
        held = self.depth_buffer.get(symbol)
        if held is None:
            held = self.depth_buffer[symbol] = deque(maxlen=DEPTH_BUFFER)
        held.extend(diffs)
