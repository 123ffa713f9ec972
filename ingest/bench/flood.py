"""A minimal Binance-shaped flood server for the benchmark, run in its own process.

It speaks just enough WebSocket (RFC 6455 handshake, unmasked server frames) to accept one
SUBSCRIBE on /market, acknowledge it, and then write pre-built aggTrade frames as fast as the
client reads them (or at a fixed rate). Frames are encoded before the clock starts, so the server
costs almost no CPU while the benchmark runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import multiprocessing
import random
import struct
import time

import orjson

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TICK_S = 0.01


def ws_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + struct.pack("!H", n) + payload
    return bytes((0x81, 127)) + struct.pack("!Q", n) + payload


def build_frames(count: int, symbols: list[str], start_ms: int, rate: float) -> list[bytes]:
    """aggTrade frames with contiguous ids per symbol and plausible random-walk prices."""
    rng = random.Random(7)
    price = dict.fromkeys(symbols, 50_000.0)
    next_id = dict.fromkeys(symbols, 1)
    frames = []
    for i in range(count):
        s = symbols[i % len(symbols)]
        price[s] *= 1 + rng.gauss(0, 1e-4)
        a = next_id[s]
        next_id[s] = a + 1
        t = start_ms + int(i * 1000 / rate)
        payload = b'{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%.2f","q":"%.3f","f":%d,"l":%d,"T":%d,"m":%s}' % (
            t,
            s.encode(),
            a,
            price[s],
            rng.uniform(0.001, 2),
            a * 2,
            a * 2 + 1,
            t,
            b"true" if rng.random() < 0.5 else b"false",
        )
        frames.append(ws_frame(payload))
    return frames


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads a client's WebSocket upgrade request and answers it (101): the benches' servers speak the
    protocol on raw streams, without a library's per-frame cost."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def _read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


async def _answer_control_frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pong pings and complete the closing handshake, so the client shuts down promptly."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            opcode, data = await _read_client_frame(reader)
            if opcode == 0x9:
                writer.write(bytes((0x8A, len(data))) + data)
            elif opcode == 0x8:
                writer.write(bytes((0x88, len(data))) + data)
                await writer.drain()
                writer.close()
                return


async def _serve(frames: list[bytes], rate: float | None, port_out, done_out) -> None:
    served = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        _, request_frame = await _read_client_frame(reader)
        subscribe = orjson.loads(request_frame)
        writer.write(ws_frame(orjson.dumps({"result": None, "id": subscribe.get("id")})))
        control = asyncio.create_task(_answer_control_frames(reader, writer))
        if served.is_set():  # one flood per run; later connections (reconnects) get nothing
            await control
            return
        served.set()
        sent, t0 = 0, time.monotonic()
        chunk = 512 if rate is None else max(1, int(rate * TICK_S))
        while sent < len(frames) and not control.done():
            writer.write(b"".join(frames[sent : sent + chunk]))
            sent += chunk
            await writer.drain()
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        done_out.send(min(sent, len(frames)))
        await control  # keep the connection open until the client leaves

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _main(count: int, symbols: list[str], rate: float | None, port_out, done_out) -> None:
    frames = build_frames(count, symbols, int(time.time() * 1000), rate or 100_000)
    asyncio.run(_serve(frames, rate, port_out, done_out))


class FloodServer:
    """The flood server process; `root` is the base URL to give the Binance connector."""

    def __init__(self, count: int, symbols: list[str], rate: float | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._port_in, port_out = ctx.Pipe(duplex=False)
        self.done, done_out = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_main, args=(count, symbols, rate, port_out, done_out), daemon=True)
        self.root = ""

    async def start(self, within_s: float = 300) -> FloodServer:
        self.process.start()
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._port_in.poll, within_s)
        if not ready:
            raise RuntimeError("the flood server did not start")
        self.root = f"ws://127.0.0.1:{self._port_in.recv()}"
        return self

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
