"""A loopback Binance USD-M market-data server with the 2026 routing: /market carries aggTrade,
markPrice@1s and forceOrder, /public carries bookTicker, and a stream subscribed on the wrong route
is acknowledged but never delivered (as on the real venue)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

ROUTE_OF_EVENT = {"aggTrade": "market", "bookTicker": "public", "markPrice": "market", "markPrice@1s": "market",
                  "forceOrder": "market", "depth": "public"}
STREAM_OF_EVENT = {"aggTrade": "aggTrade", "bookTicker": "bookTicker", "markPriceUpdate": "markPrice@1s",
                   "forceOrder": "forceOrder"}


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    route: str
    streams: set[str] = field(default_factory=set)


def agg_trade(symbol: str, a: int, price: str, qty: str, trade_ms: int, buyer_is_maker: bool,
              event_ms: int | None = None) -> dict:
    return {"e": "aggTrade", "E": event_ms or trade_ms, "s": symbol, "a": a, "p": price, "q": qty,
            "f": a * 3, "l": a * 3 + 2, "T": trade_ms, "m": buyer_is_maker}


def book_ticker(symbol: str, u: int, bid: str, bid_qty: str, ask: str, ask_qty: str, tx_ms: int,
                event_ms: int | None = None) -> dict:
    return {"e": "bookTicker", "u": u, "E": event_ms or tx_ms, "T": tx_ms, "s": symbol, "b": bid, "B": bid_qty,
            "a": ask, "A": ask_qty}


def mark_price(symbol: str, mark: str, index: str, funding: str, next_funding_ms: int, event_ms: int) -> dict:
    return {"e": "markPriceUpdate", "E": event_ms, "s": symbol, "p": mark, "i": index, "P": index, "r": funding,
            "T": next_funding_ms}


def force_order(symbol: str, side: str, price: str, qty: str, trade_ms: int) -> dict:
    return {"e": "forceOrder", "E": trade_ms + 3, "o": {"s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": qty,
                                                          "p": price, "ap": price, "X": "FILLED", "l": qty, "z": qty,
                                                          "T": trade_ms}}


class BinanceServer:
    """Also answers REST `GET /fapi/v1/openInterest?symbol=X` on the same port (plain HTTP, no upgrade),
    with the X-MBX-USED-WEIGHT-1M header; `rate_limited` answers the next N requests with 429."""

    def __init__(self) -> None:
        self.open_interest: dict[str, tuple[str, int]] = {}  # symbol -> (openInterest, time ms)
        self.rest_requests: list[str] = []
        self.used_weight = 0
        self.rate_limited = 0
        self.clients: set[Client] = set()
        self.connections = 0
        self._changed = asyncio.Condition()
        self._server = None
        self.root = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> BinanceServer:
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0, compression=None, max_queue=None,
                                              ssl=ssl_context, process_request=self._rest)
        port = self._server.sockets[0].getsockname()[1]
        self.root = f"{'wss' if ssl_context else 'ws'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _rest(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        self.rest_requests.append(request.path)
        async with self._changed:
            self._changed.notify_all()
        self.used_weight += 1
        if self.rate_limited > 0:
            self.rate_limited -= 1
            response = connection.respond(429, '{"code":-1003,"msg":"Too many requests"}')
            response.headers["Retry-After"] = "1"
            return response
        symbol = parse_qs(url.query).get("symbol", [""])[0]
        if url.path != "/fapi/v1/openInterest" or symbol not in self.open_interest:
            return connection.respond(400, '{"code":-1121,"msg":"Invalid symbol."}')
        oi, ms = self.open_interest[symbol]
        response = connection.respond(200, orjson.dumps({"openInterest": oi, "symbol": symbol, "time": ms}).decode())
        response.headers["Content-Type"] = "application/json"
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.used_weight)
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        parts = ws.request.path.strip("/").split("/")
        # A connection without a routed path only gets /public data.
        route = parts[0] if parts[0] in ("market", "public") else "public"
        client = Client(ws, route)
        self.clients.add(client)
        self.connections += 1
        try:
            async for message in ws:
                await self._on_message(client, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            async with self._changed:
                self._changed.notify_all()

    async def _on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method, params, req_id = req["method"], req.get("params", []), req.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await client.ws.send(orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}).decode())
            return
        if method == "SUBSCRIBE":
            client.streams.update(params)
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            await client.ws.send(orjson.dumps({"result": sorted(client.streams), "id": req_id}).decode())
            return
        else:
            await client.ws.send(orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": req_id}).decode())
            return
        await client.ws.send(orjson.dumps({"result": None, "id": req_id}).decode())
        async with self._changed:
            self._changed.notify_all()

    def _receivers(self, stream: str) -> list[Client]:
        route = ROUTE_OF_EVENT.get(stream.split("@", 1)[1])
        return [c for c in self.clients if stream in c.streams and c.route == route]

    async def wait_until(self, ready: Callable[[], bool], within_s: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), within_s)

    async def wait_subscribed(self, stream: str, clients: int = 1, within_s: float = 10.0) -> None:
        """Until `clients` connections receive `stream` (subscribed on the right route)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self._receivers(stream)) >= clients), within_s)

    async def publish(self, payload: dict) -> int:
        symbol = payload["o"]["s"] if payload["e"] == "forceOrder" else payload["s"]
        stream = f"{symbol.lower()}@{STREAM_OF_EVENT[payload['e']]}"
        return await self.publish_raw(stream, orjson.dumps(payload).decode())

    async def publish_raw(self, stream: str, text: str) -> int:
        """Sends a frame to every connection that receives `stream`; returns how many it was written to
        (a connection already closing does not count)."""
        sent = 0
        for c in self._receivers(stream):
            with contextlib.suppress(websockets.ConnectionClosed):
                await c.ws.send(text)
                sent += 1
        return sent

    async def drop_all(self, code: int = 1001, reason: str = "server restart") -> None:
        for c in list(self.clients):
            await c.ws.close(code, reason)
