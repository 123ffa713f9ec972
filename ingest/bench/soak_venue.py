"""The soak's venue: a Binance-protocol trade feed in its own process, so it does not share a core (and an
event loop) with the connector it feeds.

It speaks just enough WebSocket (as the flood server: handshake, unmasked server frames, client frames
unmasked on arrival) to take SUBSCRIBE requests and acknowledge them, answers pings and closing
handshakes, and publishes sequence-numbered aggTrades at a fixed rate with occasional deliberate id
skips. The parent drives faults through a pipe (close frame, TCP reset, half-open silence, malformed
frames) and collects the ledger at the end: every id written to a connection, every skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import struct
import time
from dataclasses import dataclass, field

import orjson

from ingest.bench.flood import _read_client_frame, accept_upgrade, ws_frame
from tower import eventloop

TICK_S = 0.005
SKIP_P = 0.0005  # the venue really skips ids now and then
DRAIN_S = 2.0  # a client that reads nothing this long is left behind for the tick (its socket buffer is full)


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()
    return bytes((0x88, len(payload))) + payload


@dataclass(eq=False)
class Conn:
    writer: asyncio.StreamWriter
    subs: set[str] = field(default_factory=set)
    closing: bool = False

    @property
    def open(self) -> bool:
        """Still taking data: not closing, and not reset (uvloop refuses writes to a closed transport)."""
        return not self.closing and not self.writer.transport.is_closing()


class Venue:
    """The child process's side: connections, the publisher and the fault commands."""

    def __init__(self, symbols: list[str], rate: float) -> None:
        self.symbols, self.rate = symbols, rate
        self.conns: set[Conn] = set()
        self.next_id = dict.fromkeys(symbols, 1)
        self.price = dict.fromkeys(symbols, 100.0)
        self.rng = random.Random(11)
        self.sent: dict[str, set[int]] = {s: set() for s in symbols}
        self.skipped: list[tuple[str, int, int]] = []
        self.publishing = False
        self.connected_s = 0.0  # publishing time with at least one subscribed connection to take the trades

    def receivers(self, stream: str) -> list[Conn]:
        return [c for c in self.conns if stream in c.subs and c.open]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer)
        try:
            await accept_upgrade(reader, writer)
            self.conns.add(conn)
            while True:
                opcode, data = await _read_client_frame(reader)
                if opcode == 0x1:
                    request_msg = orjson.loads(data)
                    if request_msg.get("method") == "SUBSCRIBE":
                        conn.subs.update(request_msg.get("params", []))
                    writer.write(ws_frame(orjson.dumps({"result": None, "id": request_msg.get("id")})))
                elif opcode == 0x9:
                    writer.write(bytes((0x8A, len(data))) + data)
                elif opcode == 0x8:
                    if not conn.closing:  # the client's close: answer it
                        writer.write(bytes((0x88, len(data))) + data)
                    conn.closing = True
                    await writer.drain()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError, StopIteration, orjson.JSONDecodeError):
            return
        finally:
            self.conns.discard(conn)
            writer.close()

    async def publish(self) -> None:
        """Trades at `rate` on a schedule (what falls behind is caught up, so the rate is the rate)."""
        start, made = time.monotonic(), 0
        i, last = 0, time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now, elapsed = time.monotonic(), time.monotonic() - last
            last = now
            if not self.publishing:
                start, made = now, 0
                continue
            if any(c.subs and c.open for c in self.conns):
                self.connected_s += elapsed
            due = int((time.monotonic() - start) * self.rate) - made
            out: dict[Conn, list[bytes]] = {}
            for _ in range(due):
                symbol = self.symbols[i % len(self.symbols)]
                i += 1
                a = self.next_id[symbol]
                if self.rng.random() < SKIP_P:
                    self.skipped.append((symbol, a - 1, a + 3))
                    a += 3
                self.next_id[symbol] = a + 1
                self.price[symbol] *= 1 + self.rng.gauss(0, 1e-4)
                ms = int(time.time() * 1000)
                maker = b"true" if self.rng.random() < 0.5 else b"false"
                frame = ws_frame(
                    b'{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%.4f","q":"0.5","f":%d,"l":%d,"T":%d,"m":%s}'
                    % (ms, symbol.encode(), a, self.price[symbol], a * 3, a * 3 + 2, ms, maker)
                )
                receivers = self.receivers(f"{symbol.lower()}@aggTrade")
                for c in receivers:
                    out.setdefault(c, []).append(frame)
                if receivers:
                    self.sent[symbol].add(a)
            made += due
            await self._write(out)

    async def _write(self, out: dict[Conn, list[bytes]]) -> None:
        for c, frames in out.items():
            c.writer.write(b"".join(frames))  # receivers() were open, and nothing awaited since
        for c in out:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError, RuntimeError):
                await asyncio.wait_for(c.writer.drain(), DRAIN_S)

    async def drop(self, kind: str, within_s: float = 15.0) -> bool:
        """Drops a subscribed connection, waiting for one if the connector is between connections."""
        deadline = time.monotonic() + within_s
        while not (live := [c for c in self.conns if c.subs and c.open]):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        conn = random.choice(live)
        if kind == "close":
            conn.closing = True
            conn.writer.write(close_frame(1001, "soak: venue restart"))
        elif kind == "reset":
            conn.writer.transport.abort()
        else:  # half-open: the socket stays up but nothing more arrives
            conn.subs.clear()
        return True

    async def malformed(self, n: int) -> int:
        delivered = 0
        for k in range(n):
            symbol = self.symbols[k % len(self.symbols)]
            text = [
                '{"e":"aggTrade","s":"' + symbol + '","p":"NaN"',
                "not json at all",
                '{"e":"aggTrade"}',
                '{"e":"aggTrade","s":"' + symbol + '","a":1,"p":"-5","q":"1","T":1,"E":1,"m":true}',
            ][k % 4]
            receivers = self.receivers(f"{symbol.lower()}@aggTrade")
            for c in receivers:
                c.writer.write(ws_frame(text.encode()))
            delivered += len(receivers)
        return delivered

    async def wait_subscribed(self, stream: str, within_s: float) -> bool:
        deadline = time.monotonic() + within_s
        while not self.receivers(stream):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def command(self, name: str, args: tuple) -> object:
        if name == "publish":
            self.publishing = bool(args[0])
            return True
        if name == "drop":
            return await self.drop(*args)
        if name == "malformed":
            return await self.malformed(*args)
        if name == "wait_subscribed":
            return await self.wait_subscribed(*args)
        if name == "ledger":
            return self.sent, self.skipped, self.connected_s
        raise ValueError(f"unknown soak venue command {name!r}")


async def _serve(symbols: list[str], rate: float, pipe) -> None:
    venue = Venue(symbols, rate)
    server = await asyncio.start_server(venue.handle, "127.0.0.1", 0)
    publisher = asyncio.create_task(venue.publish())
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task] = set()

    async def run(name: str, args: tuple) -> None:
        try:
            answer = await venue.command(name, args)
        except Exception as exc:  # the parent waits for an answer: it always gets one
            answer = exc
        pipe.send(answer)

    async def commands() -> None:
        # The pipe is read in a thread: an event loop's add_reader would make it non-blocking, and the
        # ledger (hundreds of thousands of ids) would not go out in one send.
        while True:
            try:
                name, args = await loop.run_in_executor(None, pipe.recv)
            except EOFError:  # the parent is gone
                return
            if name == "quit":
                return
            running.add(task := asyncio.ensure_future(run(name, args)))
            task.add_done_callback(running.discard)

    pipe.send(server.sockets[0].getsockname()[1])
    async with server:
        await commands()
    publisher.cancel()


def _main(symbols: list[str], rate: float, pipe) -> None:
    eventloop.run(_serve(symbols, rate, pipe))


class SoakVenue:
    """The parent's handle on the venue process: `root` for the connector, `call` for faults and the ledger."""

    def __init__(self, symbols: list[str], rate: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_main, args=(symbols, rate, child), daemon=True)
        self.root = ""
        self._lock = asyncio.Lock()

    async def start(self, within_s: float = 60) -> SoakVenue:
        self.process.start()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._pipe.poll, within_s):
            raise RuntimeError("the soak venue process did not start")
        self.root = f"ws://127.0.0.1:{self._pipe.recv()}"
        return self

    async def call(self, name: str, *args: object) -> object:
        async with self._lock:  # one command at a time: answers come back in order
            self._pipe.send((name, args))
            answer = await asyncio.get_running_loop().run_in_executor(None, self._pipe.recv)
        if isinstance(answer, Exception):
            raise RuntimeError(f"soak venue: {name} failed: {answer!r}")
        return answer

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send(("quit", ()))
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
