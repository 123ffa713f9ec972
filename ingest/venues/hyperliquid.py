"""Hyperliquid perps: `trades`, `bbo` and `activeAssetCtx` (mark, oracle, funding, open interest)
subscriptions per coin, with the app-level ping the venue needs (it closes a connection it has heard
nothing from for 60 s); with depth on, also `l2Book` per coin: every message a full snapshot of at most
20 levels per side, aggregated to the coarsest `nSigFigs` whose buckets stay narrow (see depth_sig_figs)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal, TypeVar

import httpx
import msgspec
import orjson
from pydantic import Field, RootModel

from ingest.rows import BookL1, Derivs, Trade, from_ms
from ingest.venues.base import (
    VALIDATION_ERRORS,
    Frame,
    FrameFunding,
    FrameId,
    FrameMs,
    FrameNonNegative,
    FramePositive,
    ListedInstrument,
    Message,
    Parsed,
    Recent,
    Route,
    Venue,
    rest_answer,
    validate,
    validation_reason,
)

MAINNET = "wss://api.hyperliquid.xyz/ws"
TESTNET = "wss://api.hyperliquid-testnet.xyz/ws"
REST_MAINNET = "https://api.hyperliquid.xyz"
REST_TESTNET = "https://api.hyperliquid-testnet.xyz"
PRICE_DECIMALS = 6  # perps: a price has at most 6 - szDecimals decimals (and 5 significant figures)
GREETING = "Websocket connection established."
GREETINGS = (GREETING, GREETING.encode())
MAX_SUBSCRIPTIONS_PER_CONNECTION = 200
PING = b'{"method":"ping"}'
DEDUP_WINDOW = 20_000  # trade ids remembered per coin: covers a reconnect's snapshot of recent trades
FUNDING_INTERVAL = timedelta(hours=1)  # Hyperliquid pays funding every hour, on the hour
BOOK_LEVELS = 20  # l2Book sends at most 20 levels per side, whatever the aggregation
# l2Book can aggregate prices to 2-5 significant figures. A bucket's width relative to the price depends only on
# the price's leading digits (4 figures: 1-10 bps), so the choice is per coin, from its mid at start: the coarsest
# aggregation whose bucket is at most a quarter of the narrowest band (10 bps). Coarser buckets reach further with
# the same 20 levels; a bucket's orders can sit up to one bucket nearer to mid than its price says.
DEPTH_BUCKET_BPS = 2.5
SIG_FIGS_CHOICES = (2, 3, 4)  # coarsest first; 5 figures is the prices' own precision: full precision (None)
log = logging.getLogger(__name__)


class TradeMsg(Frame):
    coin: str
    side: Literal["A", "B"]
    px: FramePositive
    sz: FramePositive
    time: FrameMs
    tid: FrameId


class Level(Frame):
    px: FramePositive
    sz: FramePositive


class BboMsg(Frame):
    coin: str
    time: FrameMs
    bbo: tuple[Level | None, Level | None]


class BookLevel(Frame):
    px: FramePositive
    sz: FramePositive
    n: Annotated[int, msgspec.Meta(ge=0)]  # orders at this level


class L2BookMsg(Frame):
    coin: str
    time: FrameMs
    levels: tuple[list[BookLevel], list[BookLevel]]  # bids best first, asks best first


def bucket_bps(mid: float, sig_figs: int) -> float:
    """Width of an l2Book price bucket at `mid` when prices are aggregated to `sig_figs` significant figures."""
    return 10.0 ** (math.floor(math.log10(mid)) - sig_figs + 1) / mid * 1e4


def depth_sig_figs(mid: float) -> int | None:
    """The l2Book aggregation for a coin trading near `mid`: the coarsest whose bucket is at most DEPTH_BUCKET_BPS;
    None (full precision) when even 4 figures would be coarser."""
    for sig_figs in SIG_FIGS_CHOICES:
        if bucket_bps(mid, sig_figs) <= DEPTH_BUCKET_BPS:
            return sig_figs
    return None


class AssetCtx(Frame):
    markPx: FramePositive
    oraclePx: FramePositive
    funding: FrameFunding
    openInterest: FrameNonNegative


class AssetCtxMsg(Frame):
    coin: str
    ctx: AssetCtx


CoinMsg = TypeVar("CoinMsg", L2BookMsg, AssetCtxMsg)


class TradesFrame(Frame, tag_field="channel", tag="trades"):
    data: list[TradeMsg]


class BboFrame(Frame, tag_field="channel", tag="bbo"):
    data: BboMsg


class AssetCtxFrame(Frame, tag_field="channel", tag="activeAssetCtx"):
    data: AssetCtxMsg


# The market-data channels in one pass (decoded and validated by msgspec). Anything else, or a message with
# one bad part, fails here and takes the general path, which rejects just that part and says why.
HOT_FRAMES = msgspec.json.Decoder(TradesFrame | BboFrame | AssetCtxFrame, strict=False)


class PerpAsset(Message):
    """One entry of POST /info {"type":"meta"} `universe`."""

    name: str
    szDecimals: Annotated[int, Field(ge=0, le=PRICE_DECIMALS)]
    isDelisted: bool = False


class PerpMeta(Message):
    universe: list[PerpAsset]


class AllMids(RootModel[dict[str, float]]):
    """POST /info {"type":"allMids"}: coin -> mid price (as a string)."""


class Hyperliquid(Venue):
    name = "hyperliquid"
    text_controls = GREETINGS  # the plain-text greeting every connection starts with
    example_symbols = ("BTC", "ETH")
    heartbeat_s = 20.0  # well inside the venue's 60 s idle rule
    idle_close_s = 60.0  # the venue closes a connection it has sent nothing to for 60 s
    has_rest = True  # the instrument list (POST /info meta)
    rest_mainnet = REST_MAINNET
    rest_testnet = REST_TESTNET

    # Its REST (POST /info recentTrades) returns only the latest trades, with no paging by id or time:
    # a hole cannot be filled, so its gaps stay open, resolution 'unavailable'.
    no_backfill = "Hyperliquid keeps no trade history by id over REST"

    def __init__(
        self,
        symbols: list[str],
        ws_url: str | None = None,
        testnet: bool = False,
        heartbeat_s: float | None = None,
        max_subscriptions: int = MAX_SUBSCRIPTIONS_PER_CONNECTION,
        derivs: bool = True,
        rest_url: str | None = None,
    ) -> None:
        super().__init__(symbols, heartbeat_s, ws_url=ws_url, testnet=testnet, rest_url=rest_url)
        self.kinds = ("trades", "bbo", "activeAssetCtx") if derivs else ("trades", "bbo")
        self.last_ctx: dict[str, tuple[float, float, float, float]] = {}
        self.url = ws_url or (TESTNET if testnet else MAINNET)
        self.max_subscriptions = max_subscriptions
        self.known = set(self.symbols)
        self.last_trade_time: dict[str, int] = {}
        self.seen_tids = Recent(DEDUP_WINDOW)
        self.last_bbo_time: dict[str, int] = {}
        self.unknown_channels: set[str] = set()
        self.sig_figs: dict[str, int | None] = {}  # coin -> its l2Book aggregation (absent: full precision)
        self.last_book_time: dict[str, int] = {}

    def instrument(self, symbol: str) -> tuple[str, str]:
        return symbol, "USD"

    def heartbeat(self) -> bytes | None:
        return PING

    async def listed_instruments(self, client: httpx.AsyncClient) -> list[ListedInstrument]:
        """Perps from POST /info {"type":"meta"}. Tick size: the finest price step the decimals rule allows
        (prices are also held to 5 significant figures, so high prices step more coarsely)."""
        meta = rest_answer(await client.post(f"{self.rest_root}/info", json={"type": "meta"}), PerpMeta)
        return [
            ListedInstrument(
                a.name,
                a.name,
                "USD",
                1.0,
                10.0 ** -(PRICE_DECIMALS - a.szDecimals),
                "delisted" if a.isDelisted else "listed",
                not a.isDelisted,
            )
            for a in meta.universe
        ]

    async def prepare(self, stored_sizes: Mapping[str, float]) -> None:
        """With depth on: each coin's l2Book aggregation, from its mid (POST /info allMids). Without REST, or
        when it cannot be read, books are full precision (they reach less far; reach_bps says how far)."""
        if self.depth is None or self.rest_root is None:
            return
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                mids = rest_answer(await client.post(f"{self.rest_root}/info", json={"type": "allMids"}), AllMids).root
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("hyperliquid: cannot read mids from %s (%s); l2Book at full precision", self.rest_root, exc)
            return
        usable = {coin: mid for coin, mid in mids.items() if math.isfinite(mid) and mid > 0}
        self.sig_figs = {coin: depth_sig_figs(usable[coin]) for coin in self.symbols if coin in usable}

    def subscription(self, kind: str, coin: str) -> dict:
        sub: dict = {"type": kind, "coin": coin}
        if kind == "l2Book" and self.sig_figs.get(coin) is not None:
            sub["nSigFigs"] = self.sig_figs[coin]
        return sub

    def depth_resync(self, symbol: str) -> list[bytes]:
        """Unsubscribe and subscribe again: the venue answers with the current book."""
        sub = self.subscription("l2Book", symbol)
        return [orjson.dumps({"method": m, "subscription": sub}) for m in ("unsubscribe", "subscribe")]

    def routes(self) -> list[Route]:
        kinds = (*self.kinds, "l2Book") if self.depth is not None else self.kinds
        subs = [(kind, coin) for coin in self.symbols for kind in kinds]
        routes = []
        for shard, start in enumerate(range(0, len(subs), self.max_subscriptions)):
            chunk = subs[start : start + self.max_subscriptions]
            frames = tuple(
                orjson.dumps({"method": "subscribe", "subscription": self.subscription(kind, coin)})
                for kind, coin in chunk
            )
            routes.append(Route(f"ws-{shard}", self.url, tuple(f"{kind}:{coin}" for kind, coin in chunk), frames))
        return routes

    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        try:
            hot = HOT_FRAMES.decode(frame)
        except msgspec.MsgspecError:
            return self._parse_other(frame, recv_ts)
        kind = type(hot)
        if kind is TradesFrame:
            out = Parsed(live=True)
            for i, t in enumerate(hot.data):  # type: ignore[union-attr]
                self._trade_row(t, out, recv_ts, lambda i=i: orjson.dumps(orjson.loads(frame)["data"][i]))
            return out
        if kind is BboFrame:
            return self._bbo_row(hot.data, frame, recv_ts)  # type: ignore[arg-type]
        return self._asset_ctx_row(hot.data, frame, recv_ts)  # type: ignore[arg-type]

    def _parse_other(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        """Everything but a valid market-data message: control channels, bad input."""
        msg, bad = self.decode(frame, recv_ts)
        if bad is not None:
            return bad
        if not isinstance(msg, dict) or not isinstance(msg.get("channel"), str):
            return Parsed([self.reject(recv_ts, None, None, "no_channel", frame)])
        channel, data = msg["channel"], msg.get("data")
        if channel == "trades":
            return self._trades(data, frame, recv_ts)
        if channel == "bbo":
            return self._bbo(data, frame, recv_ts)
        if channel == "activeAssetCtx":
            return self._asset_ctx(data, frame, recv_ts)
        if channel == "l2Book" and self.depth is not None:
            return self._l2book(data, frame, recv_ts)
        if channel == "subscriptionResponse":
            return Parsed(acked=1)
        if channel == "pong":
            return Parsed()
        if channel == "error":
            return Parsed(error=str(data)[:500])
        self.counters[f"unknown_channel.{channel}"] += 1
        if channel not in self.unknown_channels:
            self.unknown_channels.add(channel)
            return Parsed(error=f"unknown channel {channel!r} (ignored from now on)")
        return Parsed()

    def _trades(self, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        if not isinstance(data, list):
            return Parsed([self.reject(recv_ts, "trades", None, "invalid: data: not a list", frame)])
        out = Parsed(live=True)
        for item in data:
            coin = item.get("coin") if isinstance(item, dict) else None
            if (t := self.validated(TradeMsg, item, out, recv_ts, "trades", coin)) is not None:
                self._trade_row(t, out, recv_ts, lambda item=item: orjson.dumps(item))
        return out

    def _trade_row(self, t: TradeMsg, out: Parsed, recv_ts: datetime, raw: Callable[[], bytes]) -> None:
        """One trade of a batch; a rejection stores that trade as it came (`raw()`, built only then)."""
        if t.coin not in self.known:
            out.rows.append(self.reject(recv_ts, "trades", t.coin, "unknown_symbol", raw()))
            return
        if (t.coin, t.tid) in self.seen_tids:  # a reconnect's snapshot repeats recent trades
            self.counters["duplicate"] += 1
            return
        if t.time < self.last_trade_time.get(t.coin, 0):
            out.rows.append(self.reject(recv_ts, "trades", t.coin, "out_of_order", raw()))
            return
        self.seen_tids.add(t.coin, t.tid)
        self.last_trade_time[t.coin] = t.time
        # side is the aggressor: B = bid side took liquidity = buy.
        out.rows.append(
            Trade(
                self.name, t.coin, from_ms(t.time), recv_ts, str(t.tid), t.px, t.sz, "buy" if t.side == "B" else "sell"
            )
        )
        self.counters["trades"] += 1

    def _bbo(self, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        coin = data.get("coin") if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(data.get("bbo"), list) and len(data["bbo"]) < 2:
            # Recorded from the venue: a book with a side missing may come as a shorter list; that is a
            # one-sided book (its own reason), not a malformed message.
            data = {**data, "bbo": [*data["bbo"], None, None][:2]}
        try:
            b = validate(BboMsg, data)
        except VALIDATION_ERRORS as exc:
            return Parsed([self.reject(recv_ts, "bbo", coin, validation_reason(exc), frame)])
        return self._bbo_row(b, frame, recv_ts)

    def _bbo_row(self, b: BboMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        if b.coin not in self.known:
            return Parsed([self.reject(recv_ts, "bbo", b.coin, "unknown_symbol", frame)])
        bid, ask = b.bbo
        if bid is None or ask is None:
            return Parsed([self.reject(recv_ts, "bbo", b.coin, "one_sided_book", frame)], live=True)
        if bid.px >= ask.px:
            return Parsed([self.reject(recv_ts, "bbo", b.coin, "crossed_book", frame)], live=True)
        last = self.last_bbo_time.get(b.coin)
        if last is not None and b.time == last:  # the snapshot after a (re)subscribe repeats the current book
            self.counters["duplicate"] += 1
            return Parsed(live=True)
        if last is not None and b.time < last:
            return Parsed([self.reject(recv_ts, "bbo", b.coin, "out_of_order", frame)], live=True)
        self.last_bbo_time[b.coin] = b.time
        self.counters["books"] += 1
        return Parsed(
            [BookL1(self.name, b.coin, from_ms(b.time), recv_ts, bid.px, bid.sz, ask.px, ask.sz, None)], live=True
        )

    def _coin_message(
        self, model: type[CoinMsg], stream: str, data: object, frame: str | bytes, recv_ts: datetime
    ) -> tuple[CoinMsg, None] | tuple[None, Parsed]:
        """One coin's message as `model`, or its rejection when it is not the venue's format (the coin is checked
        by the row code, which the hot path shares)."""
        coin = data.get("coin") if isinstance(data, dict) else None
        try:
            return validate(model, data), None
        except VALIDATION_ERRORS as exc:
            return None, Parsed([self.reject(recv_ts, stream, coin, validation_reason(exc), frame)])

    def _l2book(self, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        """Every l2Book message is the whole (capped) book: it replaces the held one. No sequence numbers: a
        repeated time is the snapshot a resubscribe resends, an older one is out of order."""
        assert self.depth is not None
        m, bad = self._coin_message(L2BookMsg, "l2Book", data, frame, recv_ts)
        if bad is not None:
            return bad
        if m.coin not in self.known:
            return Parsed([self.reject(recv_ts, "l2Book", m.coin, "unknown_symbol", frame)])
        bids, asks = m.levels
        if bids and asks and bids[0].px >= asks[0].px:
            return Parsed([self.reject(recv_ts, "l2Book", m.coin, "crossed_book", frame)], live=True)
        last = self.last_book_time.get(m.coin)
        if last is not None and m.time <= last:
            if m.time == last:
                self.counters["duplicate"] += 1
                return Parsed(live=True)
            return Parsed([self.reject(recv_ts, "l2Book", m.coin, "out_of_order", frame)], live=True)
        self.last_book_time[m.coin] = m.time
        book = self.depth.book(m.coin)
        book.reset(((b.px, b.sz) for b in bids), ((a.px, a.sz) for a in asks), from_ms(m.time), recv_ts)
        out = Parsed(live=True)
        self.depth_sample(m.coin, book, out)
        return out

    def _asset_ctx(self, data: object, frame: str | bytes, recv_ts: datetime) -> Parsed:
        a, bad = self._coin_message(AssetCtxMsg, "activeAssetCtx", data, frame, recv_ts)
        if bad is not None:
            return bad
        return self._asset_ctx_row(a, frame, recv_ts)

    def _asset_ctx_row(self, a: AssetCtxMsg, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
        if a.coin not in self.known:
            return Parsed([self.reject(recv_ts, "activeAssetCtx", a.coin, "unknown_symbol", frame)])
        c = a.ctx
        values = (c.markPx, c.oraclePx, c.funding, c.openInterest)
        if self.last_ctx.get(a.coin) == values:  # the snapshot after a (re)subscribe repeats the current state
            self.counters["duplicate"] += 1
            return Parsed(live=True)
        self.last_ctx[a.coin] = values
        self.counters["derivs"] += 1
        # The context carries no time of its own: it is as of receipt. Funding settles on the hour;
        # the oracle price is the index the premium (basis) is measured against.
        next_hour = recv_ts.replace(minute=0, second=0, microsecond=0) + FUNDING_INTERVAL
        return Parsed(
            [
                Derivs(
                    self.name,
                    a.coin,
                    recv_ts,
                    recv_ts,
                    mark_px=c.markPx,
                    index_px=c.oraclePx,
                    funding_rate=c.funding,
                    funding_interval=FUNDING_INTERVAL,
                    next_funding_ts=next_hour,
                    open_interest=c.openInterest,
                )
            ],
            live=True,
        )
