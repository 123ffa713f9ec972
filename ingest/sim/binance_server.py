"""A loopback Binance USD-M market-data server with the 2026 routing: /market carries aggTrade,
/public carries bookTicker, and a stream subscribed on the wrong route is acknowledged but never
delivered (as on the real venue)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

import orjson
import websockets
from websockets.asyncio.server import ServerConnection

ROUTE_OF_EVENT = {"aggTrade": "market", "bookTicker": "public", "markPrice": "market", "depth": "public"}


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


class BinanceServer:
    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.connections = 0
        self._changed = asyncio.Condition()
        self._server = None
        self.root = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> BinanceServer:
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0, compression=None, max_queue=None,
                                              ssl=ssl_context)
        port = self._server.sockets[0].getsockname()[1]
        self.root = f"{'wss' if ssl_context else 'ws'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

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

    async def wait_subscribed(self, stream: str, clients: int = 1, within_s: float = 10.0) -> None:
        """Until `clients` connections receive `stream` (subscribed on the right route)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self._receivers(stream)) >= clients), within_s)

    async def publish(self, payload: dict) -> int:
        return await self.publish_raw(f"{payload['s'].lower()}@{payload['e']}", orjson.dumps(payload).decode())

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
