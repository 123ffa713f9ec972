"""A loopback Hyperliquid websocket server: subscribe/unsubscribe with subscriptionResponse, ping/pong,
errors on an unknown method, and the idle rule: a connection the server has heard nothing from for
`idle_timeout_s` is closed; and REST `POST /info {"type":"meta"}` (the perp universe) and `{"type":"allMids"}`
on its own port (`rest_url`), since the WebSocket server cannot take request bodies.

l2Book: the server holds each coin's full book (`set_book`, price -> size and order count) and sends every
l2Book subscriber the top 20 levels per side, aggregated to the subscription's `nSigFigs` (bids rounded down,
asks up, to the bucket; absent = full precision), at once after the ack and on every `publish_book`.
"""

from __future__ import annotations

import math
import ssl
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import orjson

from ingest.sim.rest import HttpRequest, LoopbackRest
from ingest.sim.server import Client, LoopbackServer
from ingest.venues.hyperliquid import GREETING

KINDS = ("trades", "bbo", "l2Book", "activeAssetCtx")
UNIVERSE = {"BTC": 5, "ETH": 4, "SOL": 2}  # name -> szDecimals
BOOK_LEVELS = 20  # the venue's cap per side
Side = dict[str, tuple[str, int]]  # price -> (size, orders), as the venue writes them


def aggregate(side: Side, sig_figs: int | None, bids: bool) -> list[dict]:
    """The best BOOK_LEVELS of one side as l2Book levels, prices bucketed to `sig_figs` significant figures."""
    buckets: dict[Decimal, list] = {}
    for px, (sz, n) in side.items():
        price = Decimal(px)
        if sig_figs is not None:
            step = Decimal(10) ** (math.floor(math.log10(price)) - sig_figs + 1)
            price = (price / step).to_integral_value(ROUND_FLOOR if bids else ROUND_CEILING) * step
        level = buckets.setdefault(price, [Decimal(0), 0])
        level[0] += Decimal(sz)
        level[1] += n
    best = sorted(buckets, reverse=bids)[:BOOK_LEVELS]
    return [{"px": _text(p), "sz": _text(buckets[p][0]), "n": buckets[p][1]} for p in best]


def _text(d: Decimal) -> str:
    return format(d.normalize(), "f")


def perp_asset(name: str, sz_decimals: int, delisted: bool = False) -> dict:
    """One `universe` entry of the meta answer, as the venue sends it (isDelisted only when true)."""
    entry = {"name": name, "szDecimals": sz_decimals, "maxLeverage": 40, "marginTableId": 56, "onlyIsolated": False}
    return entry | ({"isDelisted": True} if delisted else {})


def trade(coin: str, side: str, px: str, sz: str, ms: int, tid: int) -> dict:
    return {
        "coin": coin,
        "side": side,
        "px": px,
        "sz": sz,
        "time": ms,
        "hash": f"0x{tid:064x}",
        "tid": tid,
        "users": ["0x" + "1" * 40, "0x" + "2" * 40],
    }


def bbo(coin: str, ms: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None) -> dict:
    def level(x):
        return None if x is None else {"px": x[0], "sz": x[1], "n": 3}

    return {"coin": coin, "time": ms, "bbo": [level(bid), level(ask)]}


def asset_ctx(coin: str, mark: str, oracle: str, funding: str, open_interest: str) -> dict:
    return {
        "coin": coin,
        "ctx": {
            "funding": funding,
            "openInterest": open_interest,
            "oraclePx": oracle,
            "markPx": mark,
            "midPx": mark,
            "premium": "0.0",
            "dayNtlVlm": "1000000.0",
            "prevDayPx": oracle,
            "impactPxs": [mark, mark],
        },
    }


class HyperliquidServer(LoopbackServer):
    path = "/ws"

    def __init__(self, idle_timeout_s: float = 60.0) -> None:
        super().__init__(idle_timeout_s)
        self.universe = [perp_asset(n, d) for n, d in UNIVERSE.items()]
        self.rest_down = False
        self.rest = LoopbackRest(self._info)
        self.mids: dict[str, str] = {}
        self.books: dict[str, tuple[Side, Side, int]] = {}  # coin -> (bids, asks, time ms)
        self.book_sig_figs: dict[tuple[int, str], int | None] = {}  # (client id, coin) -> its l2Book nSigFigs
        self.book_subscribes = 0

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> HyperliquidServer:
        await self.rest.start()
        await super().start(ssl_context)
        return self

    async def stop(self) -> None:
        await self.rest.stop()
        await super().stop()

    @property
    def rest_url(self) -> str:
        return self.rest.url

    def _info(self, request: HttpRequest) -> tuple[int, object]:
        if self.rest_down:
            return 503, {"error": "service unavailable"}
        try:
            kind = orjson.loads(request.body).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            return 422, "Failed to deserialize the JSON body into the target type"
        if request.method == "POST" and request.path == "/info" and kind == "allMids":
            return 200, self.mids
        if request.method != "POST" or request.path != "/info" or kind != "meta":
            return 422, "Failed to deserialize the JSON body into the target type"
        return 200, {"universe": self.universe, "marginTables": [[56, {"description": "", "marginTiers": []}]]}

    async def on_connect(self, client: Client) -> None:
        await self.send(client, GREETING)  # plain text, before anything is asked (seen on the live venue)

    async def on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method = req["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._send(
                client,
                {"channel": "error", "data": f"Error parsing JSON into valid websocket request: {str(message)[:100]}"},
            )
            return
        if method == "ping":
            self.pings += 1
            await self._send(client, {"channel": "pong"})
            return
        sub = req.get("subscription") or {}
        kind, coin = sub.get("type"), sub.get("coin")
        sig_figs = sub.get("nSigFigs")
        if sig_figs not in (None, 2, 3, 4, 5):
            await self._send(client, {"channel": "error", "data": f"Invalid subscription {sub}"})
            return
        if method == "subscribe" and kind in KINDS and coin:
            client.subs.add(f"{kind}:{coin}")
            if kind == "l2Book":
                self.book_sig_figs[(id(client), coin)] = sig_figs
        elif method == "unsubscribe":
            client.subs.discard(f"{kind}:{coin}")
        else:
            await self._send(client, {"channel": "error", "data": f"Invalid subscription {sub}"})
            return
        await self._send(client, {"channel": "subscriptionResponse", "data": req})
        if method == "subscribe" and kind == "l2Book" and coin in self.books:
            self.book_subscribes += 1
            await self._send_book(client, coin)
        await self.changed()

    def set_book(self, coin: str, bids: Side, asks: Side, ms: int) -> None:
        """The coin's full book (no message is sent): what a subscriber's first l2Book shows."""
        self.books[coin] = (dict(bids), dict(asks), ms)

    async def publish_book(self, coin: str, bids: Side, asks: Side, ms: int) -> int:
        """A new book: every l2Book subscriber gets it, aggregated to its own nSigFigs."""
        self.set_book(coin, bids, asks, ms)
        sent = 0
        for client in self.receivers(f"l2Book:{coin}"):
            sent += await self._send_book(client, coin)
        return sent

    async def _send_book(self, client: Client, coin: str) -> bool:
        bids, asks, ms = self.books[coin]
        sig_figs = self.book_sig_figs.get((id(client), coin))
        levels = [aggregate(bids, sig_figs, bids=True), aggregate(asks, sig_figs, bids=False)]
        book: dict = {"coin": coin, "time": ms, "levels": levels}
        return await self.send(client, orjson.dumps({"channel": "l2Book", "data": book}).decode())

    async def _send(self, client: Client, msg: dict) -> None:
        await self.send(client, orjson.dumps(msg).decode())

    async def wait_subscribed(self, kind: str, coin: str, clients: int = 1, within_s: float = 10.0) -> None:
        await super().wait_subscribed(f"{kind}:{coin}", clients, within_s)

    async def publish(self, kind: str, coin: str, data: object) -> int:
        return await self.publish_raw(f"{kind}:{coin}", orjson.dumps({"channel": kind, "data": data}).decode())
