"""Binance USD-M futures: aggTrade on the /market route, bookTicker on the /public route.

Since the 2026 base-URL split a stream asked for on the wrong route is silently never delivered,
so every stream name is tied to its route here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from ingest.rows import BookL1, GapEvent, Trade, from_ms
from ingest.venues.base import Parsed, Positive, Route, Venue, VenueId, VenueMs, validation_reason

MAINNET = "wss://fstream.binance.com"
TESTNET = "wss://fstream.binancefuture.com"
# The documented limit is 1024 streams per connection; staying well under it keeps one connection's
# message rate (and the damage of one disconnect) small.
MAX_STREAMS_PER_CONNECTION = 200
# An aggTrade shard of quiet symbols can go minutes without a print while its books keep moving.
QUIET_TRADES_FACTOR = 10.0
ROUTE_OF_STREAM = {"aggTrade": "market", "bookTicker": "public"}

class AggTradeMsg(BaseModel):
    model_config = ConfigDict(extra="ignore")
    E: VenueMs
    s: str
    a: VenueId
    p: Positive
    q: Positive
    T: VenueMs
    m: bool


class BookTickerMsg(BaseModel):
    model_config = ConfigDict(extra="ignore")
    u: VenueId
    E: VenueMs
    T: VenueMs
    s: str
    b: Positive
    B: Positive
    a: Positive
    A: Positive


class Binance(Venue):
    name = "binance"

    def __init__(self, symbols: list[str], ws_url: str | None = None, testnet: bool = False,
                 max_streams: int = MAX_STREAMS_PER_CONNECTION) -> None:
        super().__init__([s.upper() for s in symbols])
        self.root = (ws_url or (TESTNET if testnet else MAINNET)).rstrip("/")
        self.max_streams = max_streams
        self.known = set(self.symbols)
        self.last_agg: dict[str, tuple[int, int]] = {}   # symbol -> (last a, last T)
        self.last_book: dict[str, tuple[int, int]] = {}  # symbol -> (last u, last T)
        self._request_id = 0

    def instrument(self, symbol: str) -> tuple[str, str]:
        for quote in ("USDT", "USDC", "BUSD", "USD"):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return symbol[: -len(quote)], quote
        return symbol, "USDT"

    def routes(self) -> list[Route]:
        routes = []
        for stream, route in ROUTE_OF_STREAM.items():
            names = [f"{s.lower()}@{stream}" for s in self.symbols]
            for shard, start in enumerate(range(0, len(names), self.max_streams)):
                chunk = tuple(names[start:start + self.max_streams])
                self._request_id += 1
                subscribe = orjson.dumps({"method": "SUBSCRIBE", "params": list(chunk), "id": self._request_id})
                routes.append(Route(f"{route}-{stream}-{shard}", f"{self.root}/{route}/ws", chunk, (subscribe,),
                                    stale_factor=QUIET_TRADES_FACTOR if stream == "aggTrade" else 1.0))
        return routes

    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed:
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
        if "id" in msg and "result" in msg:
            return Parsed(acked=1)
        if "error" in msg:
            return Parsed(error=str(msg["error"])[:500])
        return Parsed([self.reject(recv_ts, None, msg.get("s"), f"unknown_event: {event!r}"[:100], frame)])

    def _agg_trade(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            t = AggTradeMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "aggTrade", symbol, validation_reason(exc), frame)])
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
                out.rows.append(GapEvent(self.name, t.s, "aggTrade", last_a, t.a, t.a - last_a - 1,
                                         from_ms(last_t), from_ms(t.T), "id_jump"))
        self.last_agg[t.s] = (t.a, t.T)
        # m: the buyer was the maker, so the aggressor sold.
        out.rows.append(Trade(self.name, t.s, from_ms(t.T), recv_ts, str(t.a), t.p, t.q, "sell" if t.m else "buy"))
        self.counters["trades"] += 1
        return out

    def _book_ticker(self, msg: dict, frame: str | bytes, recv_ts: datetime) -> Parsed:
        symbol = msg.get("s")
        try:
            b = BookTickerMsg.model_validate(msg)
        except ValidationError as exc:
            return Parsed([self.reject(recv_ts, "bookTicker", symbol, validation_reason(exc), frame)])
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
