"""A loopback Binance USD-M market-data server with the 2026 routing: /market carries aggTrade,
markPrice@1s and forceOrder, /public carries bookTicker, and a stream subscribed on the wrong route
is acknowledged but never delivered (as on the real venue)."""

from __future__ import annotations

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
}
STREAM_OF_EVENT = {
    "aggTrade": "aggTrade",
    "bookTicker": "bookTicker",
    "markPriceUpdate": "markPrice@1s",
    "forceOrder": "forceOrder",
}


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
    `history_page` a page; `rest_down` answers every REST request with 503."""

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
        if url.path == "/fapi/v1/aggTrades" and symbol in self.history:
            self.used_weight += 19  # weight 20
            start, limit = int(query.get("fromId", 0)), min(int(query.get("limit", 500)), self.history_page)
            page = [t for t in self.history[symbol] if t["a"] >= start][:limit]
            return self._json(connection, [{k: t[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for t in page])
        if url.path != "/fapi/v1/openInterest" or symbol not in self.open_interest:
            return connection.respond(400, '{"code":-1121,"msg":"Invalid symbol."}')
        oi, ms = self.open_interest[symbol]
        return self._json(connection, {"openInterest": oi, "symbol": symbol, "time": ms})

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
