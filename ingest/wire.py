"""A lean WebSocket client connection for high-rate market data, on picows.

picows parses RFC 6455 frames in C (Cython) straight from the transport's buffer and answers pings
itself; here each data frame's payload is collected, and the reader gets every message of one TCP read
at once, as a list (picows marks the last frame of a read). Measured on loopback against the same flood
server: ~1 µs of client CPU per frame against ~4-5 µs for websockets' Sans-I/O protocol fed from the
transport, which this module used before (BENCHMARKS.md, issue 13).

The closing handshake is ours to do: a close frame from the venue is answered with the same code, then
the TCP connection is closed; a close we start waits for the venue's answer (then closes), or aborts.
`close_code` / `close_reason` follow websockets' convention: what the venue's close frame said, 1006
and "" when the connection ended without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque

import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport

MAX_MESSAGE_BYTES = 2**24
HIGH_WATER = 256  # TCP reads buffered before we stop reading from the socket (backpressure)
LOW_WATER = 64
# picows logs every connection at INFO; the runtime logs (and records) connections itself.
logging.getLogger("picows").setLevel(logging.WARNING)
ABNORMAL_CLOSURE = 1006  # RFC 6455: the connection ended without a close frame


class HandshakeFailed(ConnectionError):
    """The server did not accept the WebSocket upgrade (status, headers), or broke the protocol."""


class WireConnection(WSListener):
    def __init__(self, url: str) -> None:
        self.url = url
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: WSTransport | None = None
        self._chunks: deque[list[bytes]] = deque()
        self._current: list[bytes] = []
        self._fragments: list[bytes] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._paused = False
        self._close_rcvd: tuple[int, str] | None = None

    # -- picows.WSListener ----------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if frame.fin:
                self._current.append(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif kind is WSMsgType.CONTINUATION and self._fragments is not None:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                self._current.append(b"".join(self._fragments))
                self._fragments = None
        elif kind is WSMsgType.CLOSE:
            self._on_close_frame(transport, frame)
        if frame.last_in_buffer and self._current:
            self._chunks.append(self._current)
            self._current = []
            if len(self._chunks) >= HIGH_WATER and not self._paused:
                self._paused = True
                transport.underlying_transport.pause_reading()
            self._wake()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._current:  # a read cut short by the disconnect: what came is still data
            self._chunks.append(self._current)
            self._current = []
        if not self.lost.done():
            self.lost.set_result(None)
        self._wake()

    def _on_close_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        code = int(frame.get_close_code())
        message = frame.get_close_message()
        self._close_rcvd = (code, message.decode("utf-8", "replace") if message else "")
        if not transport.is_close_frame_sent:
            transport.send_close(code)  # the venue started the closing handshake: answer it, then hang up
            transport.disconnect()
            return
        transport.disconnect()  # the answer to our close: the handshake is complete

    # -- what the runtime uses ----------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        if not self.lost.done():
            return None
        return self._close_rcvd[0] if self._close_rcvd is not None else ABNORMAL_CLOSURE

    @property
    def close_reason(self) -> str | None:
        if not self.lost.done():
            return None
        return self._close_rcvd[1] if self._close_rcvd is not None else ""

    async def send(self, text: str) -> None:
        """Sends a text frame; nothing once the connection is closing (the reader sees the close)."""
        if self.transport is not None and not self.lost.done() and not self.transport.is_close_frame_sent:
            self.transport.send(WSMsgType.TEXT, text.encode())

    async def messages(self):
        """Lists of messages, in arrival order, until the connection is closed."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                if self._paused and len(self._chunks) <= LOW_WATER and not self.lost.done():
                    self._paused = False
                    self.transport.underlying_transport.resume_reading()
                yield chunk
            elif self.lost.done():
                return
            else:
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup

    async def close(self, code: int = 1000, reason: str = "", timeout_s: float = 5.0) -> None:
        if self.transport is None or self.lost.done():
            return
        if not self.transport.is_close_frame_sent:
            self.transport.send_close(code, reason.encode())
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), timeout_s)
        except TimeoutError:
            self._abort_if_open()
            with contextlib.suppress(TimeoutError):  # an aborted transport reports its end; never wait for ever
                await asyncio.wait_for(asyncio.shield(self.lost), 1.0)

    # -- internals ----------------------------------------------------------------------------------

    def _abort_if_open(self) -> None:
        if not self.lost.done() and self.transport is not None:
            self.transport.underlying_transport.abort()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


async def connect(url: str, open_timeout_s: float, ssl_context: ssl.SSLContext | None = None) -> WireConnection:
    """Opens a ws:// or wss:// connection (system trust store unless ssl_context is given). Raises OSError,
    TimeoutError, or HandshakeFailed (a ConnectionError) when the server refuses the upgrade."""
    secure = url.startswith("wss://")
    context = (ssl_context or ssl.create_default_context()) if secure else None
    try:
        _, conn = await asyncio.wait_for(
            picows.ws_connect(
                lambda: WireConnection(url),
                url,
                ssl_context=context,
                websocket_handshake_timeout=open_timeout_s,
                enable_auto_pong=True,
                max_frame_size=MAX_MESSAGE_BYTES,
                max_redirects=0,
            ),
            open_timeout_s,
        )
    except picows.WSError as exc:
        raise HandshakeFailed(f"{url}: {exc}") from None
    return conn
