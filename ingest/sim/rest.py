"""A minimal loopback HTTP/1.1 server for venue REST endpoints that a WebSocket server's handshake hook
cannot answer (websockets refuses request bodies, so Hyperliquid's `POST /info` needs this). One request
per connection (`Connection: close`), JSON answers, every request counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # with the query string
    body: bytes


# A handler answers (status, JSON-able body).
Handler = Callable[[HttpRequest], tuple[int, object]]


class LoopbackRest:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> LoopbackRest:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read(reader)
            if request is None:
                return
            self.requests.append(request)
            status, body = self.handler(request)
            payload = orjson.dumps(body)
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> HttpRequest | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY:
            return None
        body = await reader.readexactly(length) if length else b""
        return HttpRequest(method, path, body)
