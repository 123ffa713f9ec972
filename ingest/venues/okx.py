"""OKX v5 perpetual swaps: trades, bbo-tbt, mark-price, index-tickers, funding-rate and open-interest per
instrument, liquidation-orders for all swaps, with the text "ping" OKX needs (it closes a connection
that has seen no traffic for 30 s); with depth on, the 400-level `books` channel kept in sync by its
seqId/prevSeqId chain and verified against its CRC32 checksum after every message.

OKX sizes are in contracts. A contract is `ctVal` of the base coin (BTC-USDT-SWAP: 0.01 BTC), read at
start from REST /api/v5/public/instruments, else from ops.instruments.contract_size. A symbol with no
known contract size has its messages quarantined (raw payload kept) rather than stored in wrong units.
"""

from __future__ import annotations

import logging
import math
import zlib
from bisect import bisect_left
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

import httpx
import msgspec
import orjson
from pydantic import Field, ValidationError

from ingest.depth import DepthBook, Level
from ingest.rows import BookL1, Derivs, GapEvent, Liquidation, Trade, from_ms
from ingest.venues.base import (
    VALIDATION_ERRORS,
    BackfillPage,
    Frame,
    FrameId,
    FrameMs,
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

log = logging.getLogger("ingest.okx")

MAINNET = "wss://ws.okx.com:8443/ws/v5/public"
TESTNET = "wss://wspap.okx.com:8443/ws/v5/public"  # demo trading
REST_MAINNET = "https://www.okx.com"
REST_TESTNET = "https://www.okx.com"  # instruments are public and the same; demo adds a header only for trading
PING = b"ping"
CHANNELS = ("trades", "bbo-tbt")
DERIVS_CHANNELS = ("mark-price", "index-tickers", "funding-rate", "open-interest")
# One subscribe frame may be at most 64 KB and a connection may send 480 subscribe requests an hour:
# few, large frames. Channels per connection kept moderate so one reconnect re-subscribes little.
ARGS_PER_FRAME = 100
MAX_ARGS_PER_CONNECTION = 240
TRADE_DEDUP_WINDOW = 20_000
BACKFILL_PAGE = 100  # history-trades per REST page, the documented maximum
LIQUIDATION_MEMORY = 512
INDEX_PAIRING_MS = 5_000  # mark-price and index-tickers both push at least every second or so
# books: OKX asks for fewer than 30 of the 400-level channels per connection, so they get routes of their own.
BOOKS_PER_CONNECTION = 25
BOOK_LEVELS = 400  # what the books channel holds per side
CHECKSUM_LEVELS = 25  # the checksum covers the best 25 levels of each side
# With no depth change for about 60 s OKX sends only a keep-alive update: a books connection may be
# legitimately quiet that long, so its staleness limit is three times the others' (90 s by default).
BOOKS_STALE_FACTOR = 3.0


class TradeItem(Frame):
    instId: str
    tradeId: str
    px: FramePositive
    sz: FramePositive
    side: Literal["buy", "sell"]  # the taker's side
    ts: FrameMs
    count: Annotated[int, msgspec.Meta(ge=1)] = 1  # trades aggregated into this push; tradeId is the last of them


Levels = Annotated[list[tuple[FramePositive, FramePositive, str, str]], msgspec.Meta(min_length=1)]


WireLevel = tuple[str, str, str, str]  # price, size (contracts), deprecated "0", orders at the price
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class BooksItem(Message):
    """One `books` push: a snapshot (prevSeqId -1) or the changes since the message numbered prevSeqId."""

    asks: list[WireLevel]
    bids: list[WireLevel]
    ts: VenueMs
    checksum: Int32  # CRC32 of the book after applying this message, as a signed 32-bit integer
    seqId: VenueId
    prevSeqId: Annotated[int, Field(ge=-1, le=2**63 - 1)]


class BboItem(Frame):
    asks: Levels
    bids: Levels
    ts: FrameMs
    seqId: FrameId | None = None


class MarkItem(Frame):
    instId: str
    markPx: FramePositive
    ts: FrameMs


class ChannelArg(Frame):
    channel: str
    instId: str


class ArgOf(Frame):
    """Just the `arg` of a push (msgspec skips the data unread), to pick its decoder."""

    arg: ChannelArg


class TradesMsg(Frame):
    data: list[TradeItem]


class BboMsg(Frame):
    data: list[BboItem]


class MarkMsg(Frame):
    data: list[MarkItem]


ARG = msgspec.json.Decoder(ArgOf)
# Trades, level-1 books and marks decoded and validated in one pass per channel. A push that fails here (or any
# other channel, an event, a pong) takes the general path, which rejects just the bad part and says why.
HOT_CHANNELS = {
    "trades": msgspec.json.Decoder(TradesMsg, strict=False),
    "bbo-tbt": msgspec.json.Decoder(BboMsg, strict=False),
    "mark-price": msgspec.json.Decoder(MarkMsg, strict=False),
}


class IndexItem(Message):
    instId: str
    idxPx: Positive
    ts: VenueMs


class FundingItem(Message):
    """Newly listed swaps may push fundingTime (and nextFundingRate) before any fundingRate."""

    instId: str
    fundingRate: FundingRate | None = None
    fundingTime: VenueMs  # the next settlement
    nextFundingTime: VenueMs | None = None  # the one after: the gap is the interval
    ts: VenueMs | None = None


class OpenInterestItem(Message):
    instId: str
    oi: NonNegative  # contracts
    ts: VenueMs


class LiquidationDetail(Message):
    side: Literal["buy", "sell"]  # the forced order's side
    bkPx: Positive
    sz: Positive  # contracts
    ts: VenueMs


class LiquidationItem(Message):
    instId: str
    details: list[LiquidationDetail]


class SwapListing(Message):
    """One entry of GET /api/v5/public/instruments?instType=SWAP."""

    instId: str
    ctVal: Positive
    ctType: str  # linear or inverse
    ctValCcy: str  # the coin one contract is worth ctVal of (the asset of a linear swap)
    settleCcy: str  # the margin and quote currency of a linear swap
    state: str  # live, suspend, preopen, test
    tickSz: Positive | None = None


class SwapListings(Message):
    code: str
    msg: str = ""
    data: list[SwapListing]


class WireSide:
    """One side of a book as OKX wrote it: "price:size" in the exact wire strings (the checksum is over them, and
    "0.5000" is not "0.5"), in price order, best first, kept in order as levels change (bisect), so the best 25
    are a slice and no update sorts anything. Bids are keyed by the negated price so both sides run best first."""

    __slots__ = ("keys", "sign", "texts")

    def __init__(self, sign: float) -> None:
        self.sign = sign
        self.keys: list[float] = []
        self.texts: list[str] = []  # texts[i] is the level at keys[i]

    def reset(self, levels: list[tuple[float, str, str, float]]) -> None:
        held = sorted({self.sign * price: f"{px}:{sz}" for price, px, sz, size in levels if size > 0}.items())
        self.keys = [k for k, _ in held]
        self.texts = [t for _, t in held]

    def set(self, price: float, px: str, sz: str, size: float) -> None:
        key = self.sign * price
        i = bisect_left(self.keys, key)
        present = i < len(self.keys) and self.keys[i] == key
        if size > 0:
            if present:
                self.texts[i] = f"{px}:{sz}"
            else:
                self.keys.insert(i, key)
                self.texts.insert(i, f"{px}:{sz}")
        elif present:
            del self.keys[i], self.texts[i]

    def trim(self, levels: int) -> list[float]:
        """Keeps the best `levels`; returns the prices dropped."""
        dropped = self.keys[levels:]
        del self.keys[levels:], self.texts[levels:]
        return [self.sign * key for key in dropped]


class WireBook:
    """The wire strings of one instrument's book, for OKX's checksum."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = WireSide(-1.0)
        self.asks = WireSide(1.0)

    def check_string(self) -> str:
        """OKX's checksum input: the best 25 of each side as price:size, alternating bid and ask, the longer
        side's rest appended."""
        bids, asks = self.bids.texts[:CHECKSUM_LEVELS], self.asks.texts[:CHECKSUM_LEVELS]
        n = min(len(bids), len(asks))
        parts = [""] * (2 * n)
        parts[::2], parts[1::2] = bids[:n], asks[:n]
        return ":".join(parts + bids[n:] + asks[n:])

    def checksum(self) -> int:
        """CRC32 of check_string() as the signed 32-bit integer OKX sends."""
        crc = zlib.crc32(self.check_string().encode())
        return crc - 2**32 if crc >= 2**31 else crc


def parsed_levels(levels: list[WireLevel]) -> list[tuple[float, str, str, float]]:
    """(price, price string, size string, size in contracts) per level. Raises ValueError for a price that is
    not a positive number or a size that is not a non-negative one."""
    out = []
    for px, sz, _, _ in levels:
        price, size = float(px), float(sz)
        if not (math.isfinite(price) and price > 0 and math.isfinite(size) and size >= 0):
            raise ValueError(f"level {px!r} {sz!r}: price must be > 0, size >= 0")
        out.append((price, px, sz, size))
    return out


def base_levels(levels: list[tuple[float, str, str, float]], ct: float) -> list[Level]:
    return [(price, size * ct) for price, _, _, size in levels]


def index_of(symbol: str) -> str:
    """BTC-USDT-SWAP is priced against the BTC-USDT index."""
    return symbol.removesuffix("-SWAP")


class Okx(Venue):
    name = "okx"
    example_symbols = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
    heartbeat_s = 20.0  # inside the venue's 30 s idle rule
    idle_close_s = 30.0  # OKX drops connections with no traffic for 30 s
    has_rest = True  # instrument metadata (contract sizes), trade history
    rest_mainnet = REST_MAINNET
    rest_testnet = REST_TESTNET
    rest_uses = "the instrument check and contract sizes from the venue (ops.instruments is used instead)"
    counts_contracts = True
    # GET /api/v5/market/history-trades with type=1 pages backwards by trade id (after=<id>: older ones).
    no_backfill = None

    def __init__(
        self,
        symbols: list[str],
        ws_url: str | None = None,
        testnet: bool = False,
        heartbeat_s: float | None = None,
        rest_url: str | None = None,
        contract_sizes: dict[str, float] | None = None,
        derivs: bool = True,
        max_args: int = MAX_ARGS_PER_CONNECTION,
    ) -> None:
        super().__init__([s.upper() for s in symbols], heartbeat_s, ws_url=ws_url, testnet=testnet, rest_url=rest_url)
        self.url = ws_url or (TESTNET if testnet else MAINNET)
        self.derivs = derivs
        self.max_args = max_args
        self.known = set(self.symbols)
        self.by_index = {index_of(s): s for s in self.symbols}
        self.contract_sizes: dict[str, float] = dict(contract_sizes or {})
        self.last_book: dict[str, tuple[int, int]] = {}  # symbol -> (ts, seqId)
        self.last_trade_ms: dict[str, int] = {}
        self.last_trade_id: dict[str, int] = {}  # trade ids are sequential per instrument: jumps are gaps
        self.seen_trades = Recent(TRADE_DEDUP_WINDOW)
        self.last_derivs: dict[tuple[str, str], int] = {}  # (channel, symbol) -> last ts
        self.last_index: dict[str, tuple[int, float]] = {}  # symbol -> (ts, index price)
        self.recent_liquidations = Recent(LIQUIDATION_MEMORY)
        self.wire_books: dict[str, WireBook] = {}  # symbol -> the wire strings of its depth book (checksums)

    def instrument(self, symbol: str) -> tuple[str, str]:
        parts = symbol.split("-")
        return (parts[0], parts[1]) if len(parts) >= 2 else (symbol, "USDT")

    def contract_size(self, symbol: str) -> float | None:
        return self.contract_sizes.get(symbol)

    def heartbeat(self) -> bytes | None:
        return PING

    async def prepare(self, stored_sizes: Mapping[str, float]) -> None:
        """Contract sizes: REST instrument metadata (current), else what ops.instruments holds."""
        missing = [s for s in self.symbols if s not in self.contract_sizes]
        if not missing:
            return
        if self.rest_root is not None:  # no REST root: ops.instruments only
            try:
                self.contract_sizes.update(await self._rest_contract_sizes(missing))
            except (httpx.HTTPError, OSError, ValueError) as exc:
                log.warning(
                    "okx: cannot read instrument metadata from %s (%s); using ops.instruments", self.rest_root, exc
                )
        self.contract_sizes.update(
            {s: stored_sizes[s] for s in self.symbols if s not in self.contract_sizes and s in stored_sizes}
        )
        missing = [s for s in self.symbols if s not in self.contract_sizes]
        if missing:
            log.error(
                "okx: no contract size for %s: their messages will be quarantined (reason no_contract_size) "
                "until ops.instruments has one and ingest restarts",
                ", ".join(missing),
            )

    async def listed_instruments(self, client: httpx.AsyncClient) -> list[ListedInstrument]:
        """Linear swaps from GET /api/v5/public/instruments?instType=SWAP (inverse swaps count in USD)."""
        url = f"{self.rest_root}/api/v5/public/instruments"
        body = rest_answer(await client.get(url, params={"instType": "SWAP"}), SwapListings)
        if body.code != "0":
            raise ValueError(f"OKX says {body.code}: {body.msg}")
        return [
            ListedInstrument(i.instId, i.ctValCcy, i.settleCcy, i.ctVal, i.tickSz, i.state, i.state == "live")
            for i in body.data
            if i.ctType == "linear"
        ]

    async def _rest_contract_sizes(self, symbols: list[str]) -> dict[str, float]:
        """ctVal of these symbols from the same instrument list the symbol check reads (linear swaps only:
        inverse ones count contracts in USD, not base units)."""
        async with httpx.AsyncClient(timeout=10) as client:
            listed = {i.symbol: i.contract_size for i in await self.listed_instruments(client)}
        for s in symbols:
            if s not in listed:
                log.error("okx: %s is not a linear swap in OKX's instrument list; only linear swaps are supported", s)
        return {s: listed[s] for s in symbols if s in listed}

    def routes(self) -> list[Route]:
        channels = CHANNELS + (DERIVS_CHANNELS if self.derivs else ())
        args = [
            {"channel": c, "instId": index_of(s) if c == "index-tickers" else s} for s in self.symbols for c in channels
        ]
        routes = []
        for shard, start in enumerate(range(0, len(args), self.max_args)):
            chunk = args[start : start + self.max_args]
            if shard == 0 and self.derivs:  # one firehose of all swap liquidations, filtered here
                chunk = [*chunk, {"channel": "liquidation-orders", "instType": "SWAP"}]
            frames = tuple(
                orjson.dumps({"id": f"s{shard}x{i}", "op": "subscribe", "args": chunk[i : i + ARGS_PER_FRAME]})
                for i in range(0, len(chunk), ARGS_PER_FRAME)
            )
            names = tuple(f"{a['channel']}:{a.get('instId', a.get('instType'))}" for a in chunk)
            routes.append(Route(f"public-{shard}", self.url, names, frames, acks=len(chunk)))
        return routes + self._books_routes()

    def _books_routes(self) -> list[Route]:
        """The 400-level books, on connections of their own (OKX: fewer than 30 such channels per connection)."""
        if self.depth is None:
            return []
        routes = []
        for shard, start in enumerate(range(0, len(self.symbols), BOOKS_PER_CONNECTION)):
            chunk = self.symbols[start : start + BOOKS_PER_CONNECTION]
            frame = orjson.dumps({"id": f"b{shard}", "op": "subscribe", "args": [books_arg(s) for s in chunk]})
            names = tuple(f"books:{s}" for s in chunk)
            routes.append(
                Route(f"books-{shard}", self.url, names, (frame,), stale_factor=BOOKS_STALE_FACTOR, acks=len(chunk))
            )
        return routes

    def depth_resync(self, symbol: str) -> list[bytes]:
        """Unsubscribe and subscribe again: OKX answers a books subscription with a fresh snapshot."""
        return [orjson.dumps({"op": op, "args": [books_arg(symbol)]}) for op in ("unsubscribe", "subscribe")]

    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        try:
            arg = ARG.decode(frame).arg
            hot = HOT_CHANNELS[arg.channel].decode(frame) if arg.instId in self.known else None
        except (msgspec.MsgspecError, KeyError):
            hot = None
        if type(hot) is TradesMsg:
            return self._trade_rows(arg.instId, hot.data, frame, recv_ts)
        if type(hot) is BboMsg and len(hot.data) == 1:
            return self._bbo_row(arg.instId, hot.data[0], frame, recv_ts)
        if type(hot) is MarkMsg and hot.data:
            return self._mark_row(arg.instId, hot.data[-1], recv_ts)
        return self._parse_other(frame, recv_ts)

    def _parse_other(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        """Everything but a valid trade, book or mark push: other channels, events, pongs, bad input."""
        if frame in ("pong", b"pong"):
            return Parsed()
        msg, bad = self.decode(frame, recv_ts)
        if bad is not None:
            return bad
        if not isinstance(msg, dict):
            return Parsed([self.reject(recv_ts, None, None, "not_an_object", frame)])
        event = msg.get("event")
        if event == "subscribe":
            return Parsed(acked=1)
        if event == "error":
            return Parsed(error=f"{msg.get('code')}: {msg.get('msg')}"[:500])
        if event is not None:  # unsubscribe, notice (service upgrade ahead), channel-conn-count...
            return Parsed(error=f"{event}: {msg.get('msg', '')}"[:500] if event == "notice" else None)
        arg, data = msg.get("arg"), msg.get("data")
        if not isinstance(arg, dict) or not isinstance(data, list):
            return Parsed([self.reject(recv_ts, None, None, "no_channel", frame)])
        channel = arg.get("channel")
        if channel == "liquidation-orders":
            return self._liquidations(data, recv_ts)
        inst = arg.get("instId")
        if not isinstance(inst, str):
            return Parsed([self.reject(recv_ts, channel, inst, "unknown_symbol", frame)])
        symbol = self.by_index.get(inst) if channel == "index-tickers" else inst
        if symbol not in self.known:
            return Parsed([self.reject(recv_ts, channel, inst, "unknown_symbol", frame)])
        if channel == "books" and self.depth is not None:
            return self._books(symbol, msg.get("action"), data, frame, recv_ts)
        handler = HANDLERS.get(channel)
        if handler is None:
            return Parsed([self.reject(recv_ts, channel, symbol, "unknown_channel", frame)])
        return handler(self, symbol, data, frame, recv_ts)

    def _trades(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        items: list[tuple[TradeItem, Callable[[], bytes]]] = []
        out = Parsed(live=True)
        if self.contract_size(symbol) is not None:
            for item in data:
                if (t := self.validated(TradeItem, item, out, recv_ts, "trades", symbol)) is not None:
                    items.append((t, lambda item=item: orjson.dumps(item)))
        return self._trade_rows(symbol, items, frame, recv_ts, out)

    def _trade_rows(
        self, symbol: str, items: list, frame: str | bytes | bytearray, recv_ts: datetime, out: Parsed | None = None
    ) -> Parsed:
        """Rows of a push's valid trades: `items` are TradeItems (a push decoded whole) or (TradeItem, raw) pairs;
        a rejection stores the trade as it came (`raw()`, built only then)."""
        ct = self.contract_size(symbol)
        if ct is None:
            return Parsed([self.reject(recv_ts, "trades", symbol, "no_contract_size", frame)], live=True)
        out = out if out is not None else Parsed(live=True)
        for i, item in enumerate(items):
            t, raw = item if type(item) is tuple else (item, lambda i=i: orjson.dumps(orjson.loads(frame)["data"][i]))
            if (symbol, t.tradeId) in self.seen_trades:
                self.counters["duplicate"] += 1
                continue
            if t.ts < self.last_trade_ms.get(symbol, 0):
                out.rows.append(self.reject(recv_ts, "trades", symbol, "out_of_order", raw()))
                continue
            self.seen_trades.add(symbol, t.tradeId)
            if (gap := self._id_gap(symbol, t)) is not None:
                out.rows.append(gap)
            self.last_trade_ms[symbol] = t.ts
            out.rows.append(Trade(self.name, symbol, from_ms(t.ts), recv_ts, t.tradeId, t.px, t.sz * ct, t.side))
            self.counters["trades"] += 1
        return out

    def _id_gap(self, symbol: str, t: TradeItem) -> GapEvent | None:
        """A gap when this push's first trade id is not the one after the last seen (ids are numeric)."""
        if not t.tradeId.isdigit():
            return None
        tid = int(t.tradeId)
        last = self.last_trade_id.get(symbol)
        self.last_trade_id[symbol] = tid if last is None else max(last, tid)
        first = tid - t.count + 1
        if last is None or first <= last + 1:
            return None
        self.counters["gap"] += 1
        since = self.last_trade_ms.get(symbol)
        return GapEvent(
            self.name,
            symbol,
            "trades",
            last,
            first,
            first - last - 1,
            from_ms(since) if since is not None else None,
            from_ms(t.ts),
            "id_jump",
        )

    def backfill_url(self, gap: Gap, cursor: str | None) -> str | None:
        # Depth gaps carry seqIds, not trade ids: nothing in the trade history fills them.
        if gap.stream != "trades" or gap.from_id is None or gap.to_id is None:
            return None
        before = int(cursor) if cursor is not None else gap.to_id
        if before <= gap.from_id + 1:
            return None
        return (
            f"{self.rest_root}/api/v5/market/history-trades?instId={gap.symbol}&type=1&after={before}"
            f"&limit={BACKFILL_PAGE}"
        )

    def parse_backfill(self, gap: Gap, body: bytes, recv_ts: datetime) -> BackfillPage:
        msg = orjson.loads(body)
        if not isinstance(msg, dict) or msg.get("code") != "0" or not isinstance(msg.get("data"), list):
            raise ValueError(f"history-trades: {str(msg)[:200]}")
        ct = self.contract_size(gap.symbol)
        if ct is None:
            raise ValueError(f"history-trades: no contract size known for {gap.symbol}")
        page = BackfillPage()
        oldest = None
        for item in msg["data"]:
            try:
                t = validate(TradeItem, item)
                tid = int(t.tradeId)
            except (*VALIDATION_ERRORS, ValueError) as exc:
                raise ValueError(f"history-trades: {exc}"[:300]) from exc
            oldest = tid if oldest is None else min(oldest, tid)
            if gap.from_id < tid < gap.to_id:  # type: ignore[operator]  # backfill_url asked by id
                page.trades.append(
                    Trade(self.name, gap.symbol, from_ms(t.ts), recv_ts, t.tradeId, t.px, t.sz * ct, t.side, "rest")
                )
        if oldest is not None and oldest > gap.from_id + 1:  # type: ignore[operator]
            page.next_cursor = str(oldest)
        return page

    def _bbo(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        ct = self.contract_size(symbol)
        if ct is None:
            return Parsed([self.reject(recv_ts, "bbo-tbt", symbol, "no_contract_size", frame)], live=True)
        try:
            b = validate(BboItem, data[0] if len(data) == 1 else None)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "bbo-tbt", symbol, validation_reason(exc), frame)], live=True)
        return self._bbo_row(symbol, b, frame, recv_ts)

    def _bbo_row(self, symbol: str, b: BboItem, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        ct = self.contract_size(symbol)
        if ct is None:
            return Parsed([self.reject(recv_ts, "bbo-tbt", symbol, "no_contract_size", frame)], live=True)
        bid_px, bid_sz = b.bids[0][0], b.bids[0][1]
        ask_px, ask_sz = b.asks[0][0], b.asks[0][1]
        if bid_px >= ask_px:
            return Parsed([self.reject(recv_ts, "bbo-tbt", symbol, "crossed_book", frame)], live=True)
        key = (b.ts, b.seqId or 0)
        last = self.last_book.get(symbol)
        if last is not None and key <= last:
            if key == last or b.ts == last[0]:
                self.counters["duplicate"] += 1
                return Parsed(live=True)
            return Parsed([self.reject(recv_ts, "bbo-tbt", symbol, "out_of_order", frame)], live=True)
        self.last_book[symbol] = key
        self.counters["books"] += 1
        return Parsed(
            [BookL1(self.name, symbol, from_ms(b.ts), recv_ts, bid_px, bid_sz * ct, ask_px, ask_sz * ct, b.seqId)],
            live=True,
        )

    def _derivs(self, channel: str, symbol: str, ts: int, recv_ts: datetime, **fields) -> Parsed:
        key = (channel, symbol)
        if ts <= self.last_derivs.get(key, -1):  # the snapshot after a (re)subscribe repeats the last value
            self.counters["duplicate"] += 1
            return Parsed(live=True)
        self.last_derivs[key] = ts
        self.counters["derivs"] += 1
        return Parsed([Derivs(self.name, symbol, from_ms(ts), recv_ts, **fields)], live=True)

    def _mark(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        try:
            m = validate(MarkItem, data[-1] if data else None)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "mark-price", symbol, validation_reason(exc), frame)], live=True)
        return self._mark_row(symbol, m, recv_ts)

    def _mark_row(self, symbol: str, m: MarkItem, recv_ts: datetime) -> Parsed:
        # Mark and index come on separate channels; a mark row carries the index in effect (the latest one,
        # if recent) so every mark yields a basis sample.
        index = self.last_index.get(symbol)
        index_px = index[1] if index is not None and abs(m.ts - index[0]) <= INDEX_PAIRING_MS else None
        return self._derivs("mark-price", symbol, m.ts, recv_ts, mark_px=m.markPx, index_px=index_px)

    def _index(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        try:
            i = IndexItem.model_validate(data[-1] if data else None)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "index-tickers", symbol, validation_reason(exc), frame)], live=True)
        self.last_index[symbol] = (i.ts, i.idxPx)
        return self._derivs("index-tickers", symbol, i.ts, recv_ts, index_px=i.idxPx)

    def _funding(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        item = data[-1] if data else None
        if isinstance(item, dict) and "" in item.values():  # OKX sends "" for a value it does not have yet
            item = {k: v for k, v in item.items() if v != ""}
        try:
            f = FundingItem.model_validate(item)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "funding-rate", symbol, validation_reason(exc), frame)], live=True)
        interval = None
        if f.nextFundingTime and f.nextFundingTime > f.fundingTime:  # OKX intervals vary (8 h, 4 h, 1 h...)
            interval = timedelta(milliseconds=f.nextFundingTime - f.fundingTime)
        ts = f.ts if f.ts is not None else int(recv_ts.timestamp() * 1000)
        return self._derivs(
            "funding-rate",
            symbol,
            ts,
            recv_ts,
            funding_rate=f.fundingRate,
            funding_interval=interval,
            next_funding_ts=from_ms(f.fundingTime),
        )

    def _open_interest(self, symbol: str, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        ct = self.contract_size(symbol)
        if ct is None:
            return Parsed([self.reject(recv_ts, "open-interest", symbol, "no_contract_size", frame)], live=True)
        try:
            o = OpenInterestItem.model_validate(data[-1] if data else None)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "open-interest", symbol, validation_reason(exc), frame)], live=True)
        return self._derivs("open-interest", symbol, o.ts, recv_ts, open_interest=o.oi * ct)

    def _liquidations(self, data: list, recv_ts: datetime) -> Parsed:
        out = Parsed(live=True)
        for item in data:
            inst = item.get("instId") if isinstance(item, dict) else None
            # The channel carries every swap; ours are a few of them.
            if not isinstance(inst, str) or inst not in self.known:
                self.counters["liquidations_other"] += 1
                continue
            ct = self.contract_size(inst)
            if (liq := self.validated(LiquidationItem, item, out, recv_ts, "liquidation-orders", inst)) is None:
                continue
            if ct is None:
                out.rows.append(
                    self.reject(recv_ts, "liquidation-orders", inst, "no_contract_size", orjson.dumps(item))
                )
                continue
            for d in liq.details:
                if not self.recent_liquidations.first_time(inst, (d.ts, d.side, d.bkPx, d.sz)):
                    self.counters["duplicate"] += 1
                    continue
                out.rows.append(Liquidation(self.name, inst, from_ms(d.ts), recv_ts, d.side, d.bkPx, d.sz * ct))
                self.counters["liquidations"] += 1
        return out

    # -- books: snapshot + updates chained by seqId/prevSeqId, CRC32 over the best 25 levels -----------------

    def _books(self, symbol: str, action: object, data: list, frame: str | bytes, recv_ts: datetime) -> Parsed:
        ct = self.contract_size(symbol)
        if ct is None:
            return Parsed([self.reject(recv_ts, "books", symbol, "no_contract_size", frame)], live=True)
        assert self.depth is not None  # parse() routes books here only with depth on
        out = Parsed(live=True)
        book = self.depth.book(symbol)
        try:
            item = BooksItem.model_validate(data[0] if len(data) == 1 else None)
            if action not in ("snapshot", "update"):
                raise ValueError("action: not snapshot or update")
            if action == "update" and not self._continues(symbol, book, item, recv_ts, out):
                return out
            bids, asks = parsed_levels(item.bids), parsed_levels(item.asks)
        except ValidationError as exc:
            self._unusable(symbol, book, validation_reason(exc), frame, recv_ts, out)
            return out
        except ValueError as exc:
            self._unusable(symbol, book, f"invalid: {exc}", frame, recv_ts, out)
            return out
        ts = from_ms(item.ts)
        if action == "snapshot":
            if book.synced and book.update_id != item.seqId:
                # Not asked for (a reconnect's subscription): the held book missed what happened in between.
                out.rows.append(self._break(symbol, book, "resync", recv_ts, item.seqId))
            wire = self.wire_books[symbol] = WireBook()
            wire.bids.reset(bids)
            wire.asks.reset(asks)
            book.reset(base_levels(bids, ct), base_levels(asks, ct), ts, recv_ts, update_id=item.seqId)
        else:
            wire = self.wire_books[symbol]  # a synced book has one: its snapshot made it
            for side, levels in ((wire.bids, bids), (wire.asks, asks)):
                for price, px, sz, size in levels:
                    side.set(price, px, sz, size)
            book.apply(base_levels(bids, ct), base_levels(asks, ct), ts, recv_ts, update_id=item.seqId)
            if len(wire.bids.keys) > 2 * BOOK_LEVELS or len(wire.asks.keys) > 2 * BOOK_LEVELS:
                self._trim(book, wire)
        if wire.checksum() != item.checksum:
            out.rows.append(self._break(symbol, book, "checksum", recv_ts, item.seqId, from_id=item.prevSeqId))
            self._ask_snapshot(symbol, book, out)
            return out
        self.depth_sample(symbol, book, out)
        return out

    def _continues(self, symbol: str, book: DepthBook, item: BooksItem, recv_ts: datetime, out: Parsed) -> bool:
        """Whether an update is to be applied: the book is in sync and the update names its last seqId as
        prevSeqId; else the break is recorded and a snapshot asked for."""
        if not book.synced:  # waiting for a snapshot; one is asked for unless it already was
            if not book.resyncing:
                self._ask_snapshot(symbol, book, out)
            return False
        if item.prevSeqId != book.update_id:
            out.rows.append(self._break(symbol, book, "seq_break", recv_ts, item.seqId))
            self._ask_snapshot(symbol, book, out)
            return False
        if not item.bids and not item.asks:  # OKX's keep-alive after ~60 s without change (seqId unchanged)
            book.update_id = item.seqId
            return False
        return True

    def _break(
        self,
        symbol: str,
        book: DepthBook,
        cause: str,
        recv_ts: datetime,
        to_id: int | None,
        from_id: int | None = None,
    ) -> GapEvent:
        """The book is out of sync: from_id is the last seqId it was right at (default: the last applied), to_id
        the seqId of the message that showed it."""
        self.wire_books.pop(symbol, None)
        last = book.update_id if from_id is None else from_id
        return self.depth_break(
            book, symbol, cause, recv_ts, from_id=last if last is None or last >= 0 else None, to_id=to_id
        )

    def _ask_snapshot(self, symbol: str, book: DepthBook, out: Parsed) -> None:
        book.resyncing = True
        out.resync.append(symbol)

    def _unusable(
        self, symbol: str, book: DepthBook, reason: str, frame: str | bytes, recv_ts: datetime, out: Parsed
    ) -> None:
        """A books message that cannot be applied: kept as a rejection; the book cannot go on without it."""
        out.rows.append(self.reject(recv_ts, "books", symbol, reason, frame))
        if book.synced:
            out.rows.append(self._break(symbol, book, "resync", recv_ts, None))
        if not book.resyncing:
            self._ask_snapshot(symbol, book, out)

    @staticmethod
    def _trim(book: DepthBook, wire: WireBook) -> None:
        """Levels far past the channel's 400 that updates keep adding are dropped from both copies of the book."""
        for side, held in ((wire.bids, book.bids), (wire.asks, book.asks)):
            for price in side.trim(BOOK_LEVELS):
                held.pop(price, None)


def books_arg(symbol: str) -> dict[str, str]:
    return {"channel": "books", "instId": symbol}


HANDLERS = {
    "trades": Okx._trades,
    "bbo-tbt": Okx._bbo,
    "mark-price": Okx._mark,
    "index-tickers": Okx._index,
    "funding-rate": Okx._funding,
    "open-interest": Okx._open_interest,
}
