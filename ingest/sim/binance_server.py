"""A loopback Binance USD-M market-data server with the 2026 routing: /market carries aggTrade,
markPrice@1s and forceOrder, /public carries bookTicker and the diff-depth stream, and a stream subscribed on
the wrong route is acknowledged but never delivered (as on the real venue). Full books: `depth_update()`
changes the server's book and publishes the `depthUpdate` diff (U, u, pu chained as Binance does); REST
`GET /fapi/v1/depth` answers the book's snapshot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from ingest.sim.server import Client, LoopbackServer

ROUTE_OF_EVENT = {
    "aggTrade": "market",
    "bookTicker": "public",
    "markPrice": "market",
    "markPrice@1s": "market",
    "forceOrder": "market",
    "depth": "public",
    "depth@100ms": "public",
}
STREAM_OF_EVENT = {
    "aggTrade": "aggTrade",
    "bookTicker": "bookTicker",
    "markPriceUpdate": "markPrice@1s",
    "forceOrder": "forceOrder",
    "depthUpdate": "depth@100ms",
}
# GET /fapi/v1/depth request weight by `limit` (Binance USD-M "Order Book" docs)
DEPTH_WEIGHT = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
Levels = list[tuple[str, str]]  # [price, size] as the venue writes them


@dataclass
class SimBook:
    """The server's own book of one symbol and the id of its last update."""

    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    last_u: int = 1000
    event_ms: int = 0
    tx_ms: int = 0

    def change(self, bids: Levels, asks: Levels) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def top(self, limit: int) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: float(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        return [list(b) for b in bids], [list(a) for a in asks]


def route_of(client: Client) -> str:
    """A connection without a routed path only gets /public data."""
    first = client.path.strip("/").split("/")[0]
    return first if first in ("market", "public") else "public"


def agg_trade(
    symbol: str, a: int, price: str, qty: str, trade_ms: int, buyer_is_maker: bool, event_ms: int | None = None
) -> dict:
    return {
        "e": "aggTrade",
        "E": event_ms or trade_ms,
        "s": symbol,
        "a": a,
        "p": price,
        "q": qty,
        "f": a * 3,
        "l": a * 3 + 2,
        "T": trade_ms,
        "m": buyer_is_maker,
    }


def book_ticker(
    symbol: str, u: int, bid: str, bid_qty: str, ask: str, ask_qty: str, tx_ms: int, event_ms: int | None = None
) -> dict:
    return {
        "e": "bookTicker",
        "u": u,
        "E": event_ms or tx_ms,
        "T": tx_ms,
        "s": symbol,
        "b": bid,
        "B": bid_qty,
        "a": ask,
        "A": ask_qty,
    }


def mark_price(symbol: str, mark: str, index: str, funding: str, next_funding_ms: int, event_ms: int) -> dict:
    return {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": symbol,
        "p": mark,
        "i": index,
        "P": index,
        "r": funding,
        "T": next_funding_ms,
    }


def force_order(symbol: str, side: str, price: str, qty: str, trade_ms: int) -> dict:
    return {
        "e": "forceOrder",
        "E": trade_ms + 3,
        "o": {
            "s": symbol,
            "S": side,
            "o": "LIMIT",
            "f": "IOC",
            "q": qty,
            "p": price,
            "ap": price,
            "X": "FILLED",
            "l": qty,
            "z": qty,
            "T": trade_ms,
        },
    }


def depth_update(
    symbol: str, first_id: int, last_id: int, prev_id: int, bids: Levels, asks: Levels, tx_ms: int, event_ms: int
) -> dict:
    """A `<symbol>@depth@100ms` event: the absolute sizes of the levels that changed (size "0": removed)."""
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "T": tx_ms,
        "s": symbol,
        "U": first_id,
        "u": last_id,
        "pu": prev_id,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }


def depth_snapshot(last_update_id: int, bids: list, asks: list, tx_ms: int, event_ms: int) -> dict:
    """The body of GET /fapi/v1/depth."""
    return {"lastUpdateId": last_update_id, "E": event_ms, "T": tx_ms, "bids": bids, "asks": asks}


def exchange_symbol(symbol: str, status: str = "TRADING", contract_type: str = "PERPETUAL", tick: str = "0.10") -> dict:
    """One `symbols` entry of GET /fapi/v1/exchangeInfo, trimmed to the fields the venue always sends."""
    base = symbol.split("_")[0].removesuffix("USDT")
    return {
        "symbol": symbol,
        "pair": symbol.split("_")[0],
        "contractType": contract_type,
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": status,
        "baseAsset": base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "underlyingType": "COIN",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "1000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC"],
    }


LISTED = [
    exchange_symbol("BTCUSDT"),
    exchange_symbol("ETHUSDT", tick="0.01"),
    exchange_symbol("SOLUSDT", tick="0.0100"),
    exchange_symbol("BTCUSDT_260327", contract_type="CURRENT_QUARTER"),  # a delivery contract: not a perp
]


class BinanceServer(LoopbackServer):
    """Also answers REST `GET /fapi/v1/openInterest?symbol=X`, `GET /fapi/v1/fundingInfo` and
    `GET /fapi/v1/exchangeInfo` on the same port (plain HTTP, no upgrade), with the X-MBX-USED-WEIGHT-1M
    header; `rate_limited` answers the next N requests with 429. Trade history:
    `GET /fapi/v1/aggTrades?symbol=&fromId=&limit=` from `history` (symbol -> aggTrade payloads), at most
    `history_page` a page; `rest_down` answers every REST request with 503.

    Depth: `books` (symbol -> SimBook) answer `GET /fapi/v1/depth?symbol=&limit=` (weight by limit, counted
    in the header); `depth_gate`, when set, holds every depth answer until it is set (the snapshot is read
    when released, so diffs published meanwhile are older than it); `depth_drop` diffs are applied to the
    book but never sent (a missed event); `depth_reorder` holds the next diff back and sends it after the
    one that follows it."""

    path = ""  # the root: connectors append /market/ws and /public/ws

    def __init__(self) -> None:
        super().__init__()
        self.open_interest: dict[str, tuple[str, int]] = {}  # symbol -> (openInterest, time ms)
        self.rest_requests: list[str] = []
        self.used_weight = 0
        self.rate_limited = 0
        self.funding_hours: dict[str, int] = {}  # symbol -> fundingIntervalHours, for the non-8 h ones
        self.history: dict[str, list[dict]] = {}  # symbol -> aggTrade payloads, ascending a
        self.history_page = 1000
        self.listed = [dict(s) for s in LISTED]  # exchangeInfo `symbols`
        self.rest_down = False
        self.books: dict[str, SimBook] = {}
        self.depth_requests: list[str] = []  # symbols of the depth snapshots asked for
        self.depth_gate: asyncio.Event | None = None
        self.depth_drop = 0
        self.depth_reorder = False
        self._held_diff: dict | None = None

    @property
    def root(self) -> str:
        return self.url

    @property
    def rest_url(self) -> str:
        return self.url.replace("ws://", "http://")

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        self.rest_requests.append(request.path)
        await self.changed()
        self.used_weight += 1
        if self.rest_down:
            return connection.respond(503, "Service Unavailable")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            response = connection.respond(429, '{"code":-1003,"msg":"Too many requests"}')
            response.headers["Retry-After"] = "1"
            return response
        if url.path == "/fapi/v1/exchangeInfo":
            return self._json(
                connection,
                {"timezone": "UTC", "serverTime": 1, "rateLimits": [], "assets": [], "symbols": self.listed},
            )
        if url.path == "/fapi/v1/fundingInfo":  # only the symbols whose funding differs from the default
            body = [
                {
                    "symbol": s,
                    "adjustedFundingRateCap": "0.02",
                    "adjustedFundingRateFloor": "-0.02",
                    "fundingIntervalHours": h,
                    "disclaimer": False,
                }
                for s, h in self.funding_hours.items()
            ]
            return self._json(connection, body)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        symbol = query.get("symbol", "")
        if url.path == "/fapi/v1/depth":
            return await self._depth_snapshot(connection, symbol, query.get("limit", "500"))
        if url.path == "/fapi/v1/aggTrades" and symbol in self.history:
            self.used_weight += 19  # weight 20
            start, limit = int(query.get("fromId", 0)), min(int(query.get("limit", 500)), self.history_page)
            page = [t for t in self.history[symbol] if t["a"] >= start][:limit]
            return self._json(connection, [{k: t[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for t in page])
        if url.path != "/fapi/v1/openInterest" or symbol not in self.open_interest:
            return connection.respond(400, '{"code":-1121,"msg":"Invalid symbol."}')
        oi, ms = self.open_interest[symbol]
        return self._json(connection, {"openInterest": oi, "symbol": symbol, "time": ms})

    async def _depth_snapshot(self, connection: ServerConnection, symbol: str, limit: str) -> Response:
        if not limit.isdigit() or int(limit) not in DEPTH_WEIGHT:
            return connection.respond(400, '{"code":-1130,"msg":"Data sent for parameter \'limit\' is not valid."}')
        self.used_weight += DEPTH_WEIGHT[int(limit)] - 1
        if symbol not in self.books:
            return connection.respond(400, '{"code":-1121,"msg":"Invalid symbol."}')
        self.depth_requests.append(symbol)
        await self.changed()
        if self.depth_gate is not None:
            await self.depth_gate.wait()
        book = self.books[symbol]
        bids, asks = book.top(int(limit))
        return self._json(connection, depth_snapshot(book.last_u, bids, asks, book.tx_ms, book.event_ms))

    async def depth_update(self, symbol: str, bids: Levels, asks: Levels, tx_ms: int, ids: int = 3) -> dict:
        """Changes the symbol's book and publishes the diff (unless `depth_drop` / `depth_reorder` say
        otherwise); the diff spans `ids` update ids. Returns the diff."""
        book = self.books.setdefault(symbol, SimBook())
        diff = depth_update(symbol, book.last_u + 1, book.last_u + ids, book.last_u, bids, asks, tx_ms, tx_ms + 2)
        book.change(bids, asks)
        book.last_u, book.tx_ms, book.event_ms = book.last_u + ids, tx_ms, tx_ms + 2
        if self.depth_drop > 0:
            self.depth_drop -= 1
            return diff
        if self.depth_reorder:
            self.depth_reorder, self._held_diff = False, diff
            return diff
        await self.publish(diff)
        if self._held_diff is not None:
            held, self._held_diff = self._held_diff, None
            await self.publish(held)
        return diff

    def _json(self, connection: ServerConnection, body: object) -> Response:
        response = connection.respond(200, orjson.dumps(body).decode())
        response.headers["Content-Type"] = "application/json"
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.used_weight)
        return response

    async def on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method, params, req_id = req["method"], req.get("params", []), req.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self.send(client, orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}).decode())
            return
        if method == "SUBSCRIBE":
            client.subs.update(params)
        elif method == "UNSUBSCRIBE":
            client.subs.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            await self.send(client, orjson.dumps({"result": sorted(client.subs), "id": req_id}).decode())
            return
        else:
            error = {"error": {"code": 2, "msg": "Invalid request"}, "id": req_id}
            await self.send(client, orjson.dumps(error).decode())
            return
        await self.send(client, orjson.dumps({"result": None, "id": req_id}).decode())
        await self.changed()

    def receivers(self, stream: str) -> list[Client]:
        """Connections that get `stream`: subscribed to it on the route it belongs to."""
        route = ROUTE_OF_EVENT.get(stream.split("@", 1)[1])
        return [c for c in self.clients if stream in c.subs and route_of(c) == route]

    async def publish(self, payload: dict) -> int:
        symbol = payload["o"]["s"] if payload["e"] == "forceOrder" else payload["s"]
        stream = f"{symbol.lower()}@{STREAM_OF_EVENT[payload['e']]}"
        return await self.publish_raw(stream, orjson.dumps(payload).decode())
