"""A loopback Hyperliquid websocket server: subscribe/unsubscribe with subscriptionResponse, ping/pong,
errors on an unknown method, and the idle rule: a connection the server has heard nothing from for
`idle_timeout_s` is closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson
import websockets
from websockets.asyncio.server import ServerConnection


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    subs: set[tuple[str, str]] = field(default_factory=set)
    last_heard: float = field(default_factory=time.monotonic)


def trade(coin: str, side: str, px: str, sz: str, ms: int, tid: int) -> dict:
    return {"coin": coin, "side": side, "px": px, "sz": sz, "time": ms, "hash": f"0x{tid:064x}", "tid": tid,
            "users": ["0x" + "1" * 40, "0x" + "2" * 40]}


def bbo(coin: str, ms: int, bid: tuple[str, str] | None, ask: tuple[str, str] | None) -> dict:
    def level(x):
        return None if x is None else {"px": x[0], "sz": x[1], "n": 3}
    return {"coin": coin, "time": ms, "bbo": [level(bid), level(ask)]}


class HyperliquidServer:
    def __init__(self, idle_timeout_s: float = 60.0) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.clients: set[Client] = set()
        self.connections = 0
        self.pings = 0
        self.idle_closes = 0
        self._changed = asyncio.Condition()
        self._server = None
        self.url = ""

    async def start(self) -> HyperliquidServer:
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0, compression=None, max_queue=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        client = Client(ws)
        self.clients.add(client)
        self.connections += 1
        idle = asyncio.create_task(self._enforce_idle_rule(client))
        try:
            async for message in ws:
                client.last_heard = time.monotonic()
                await self._on_message(client, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            idle.cancel()
            self.clients.discard(client)
            async with self._changed:
                self._changed.notify_all()

    async def _enforce_idle_rule(self, client: Client) -> None:
        while True:
            quiet = time.monotonic() - client.last_heard
            if quiet >= self.idle_timeout_s:
                self.idle_closes += 1
                await client.ws.close(1000, "idle timeout")
                return
            await asyncio.sleep(self.idle_timeout_s - quiet)

    async def _on_message(self, client: Client, message: str | bytes) -> None:
        try:
            req = orjson.loads(message)
            method = req["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._send(client, {"channel": "error", "data": f"Error parsing JSON into valid websocket "
                                                                  f"request: {str(message)[:100]}"})
            return
        if method == "ping":
            self.pings += 1
            await self._send(client, {"channel": "pong"})
            return
        sub = req.get("subscription") or {}
        key = (sub.get("type"), sub.get("coin"))
        if method == "subscribe" and key[0] in ("trades", "bbo", "l2Book") and key[1]:
            client.subs.add(key)
        elif method == "unsubscribe":
            client.subs.discard(key)
        else:
            await self._send(client, {"channel": "error", "data": f"Invalid subscription {sub}"})
            return
        await self._send(client, {"channel": "subscriptionResponse", "data": req})
        async with self._changed:
            self._changed.notify_all()

    async def _send(self, client: Client, msg: dict) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await client.ws.send(orjson.dumps(msg).decode())

    def _receivers(self, kind: str, coin: str) -> list[Client]:
        return [c for c in self.clients if (kind, coin) in c.subs]

    async def wait_subscribed(self, kind: str, coin: str, clients: int = 1, within_s: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self._receivers(kind, coin)) >= clients),
                                   within_s)

    async def publish(self, kind: str, coin: str, data: object) -> int:
        return await self.publish_raw(kind, coin, orjson.dumps({"channel": kind, "data": data}).decode())

    async def publish_raw(self, kind: str, coin: str, text: str) -> int:
        receivers = self._receivers(kind, coin)
        for c in receivers:
            with contextlib.suppress(websockets.ConnectionClosed):
                await c.ws.send(text)
        return len(receivers)

    async def broadcast_raw(self, text: str) -> None:
        for c in list(self.clients):
            with contextlib.suppress(websockets.ConnectionClosed):
                await c.ws.send(text)

    async def drop_all(self, code: int = 1001, reason: str = "server restart") -> None:
        for c in list(self.clients):
            await c.ws.close(code, reason)
