"""What every loopback venue server shares: listen on 127.0.0.1, track clients and their subscriptions,
wait until a test's subscriptions are in place, publish to subscribers, drop connections on demand,
and enforce a venue's idle rule (close a connection the server has heard nothing from)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.server import ServerConnection


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    subs: set[str] = field(default_factory=set)
    last_heard: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return self.ws.request.path if self.ws.request is not None else "/"


class LoopbackServer:
    path = "/"

    def __init__(self, idle_timeout_s: float | None = None) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.clients: set[Client] = set()
        self.connections = 0
        self.pings = 0
        self.idle_closes = 0
        self.url = ""
        self._changed = asyncio.Condition()
        self._server = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> LoopbackServer:
        self._server = await websockets.serve(
            self._handle,
            "127.0.0.1",
            0,
            compression=None,
            max_queue=None,
            process_request=self.process_request,
            ssl=ssl_context,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'wss' if ssl_context else 'ws'}://127.0.0.1:{port}{self.path}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def process_request(self, connection: ServerConnection, request) -> object:
        """Plain HTTP requests (a venue's REST endpoints) may be answered here; None continues the handshake."""
        return None

    async def on_message(self, client: Client, message: str | bytes) -> None:
        raise NotImplementedError

    async def on_connect(self, client: Client) -> None:
        """What the venue sends unasked when a connection opens (Hyperliquid greets every one)."""
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        client = Client(ws)
        self.clients.add(client)
        self.connections += 1
        idle = asyncio.create_task(self._idle_rule(client)) if self.idle_timeout_s else None
        try:
            await self.on_connect(client)
            async for message in ws:
                client.last_heard = time.monotonic()
                await self.on_message(client, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if idle is not None:
                idle.cancel()
            self.clients.discard(client)
            await self.changed()

    async def _idle_rule(self, client: Client) -> None:
        assert self.idle_timeout_s
        while True:
            quiet = time.monotonic() - client.last_heard
            if quiet >= self.idle_timeout_s:
                self.idle_closes += 1
                await client.ws.close(1000, "idle timeout")
                return
            await asyncio.sleep(self.idle_timeout_s - quiet)

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def send(self, client: Client, text: str) -> bool:
        """False when the connection is already closing."""
        try:
            await client.ws.send(text)
        except websockets.ConnectionClosed:
            return False
        return True

    def receivers(self, sub: str) -> list[Client]:
        return [c for c in self.clients if sub in c.subs]

    async def wait_until(self, ready: Callable[[], bool], within_s: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), within_s)

    async def wait_subscribed(self, sub: str, clients: int = 1, within_s: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.receivers(sub)) >= clients, within_s)

    async def publish_raw(self, sub: str, text: str) -> int:
        """Sends a frame to every connection subscribed to `sub`; returns how many it was written to."""
        sent = 0
        for c in self.receivers(sub):
            sent += await self.send(c, text)
        return sent

    async def broadcast_raw(self, text: str) -> None:
        for c in list(self.clients):
            await self.send(c, text)

    async def drop_all(self, code: int = 1001, reason: str = "server restart") -> None:
        for c in list(self.clients):
            await c.ws.close(code, reason)
