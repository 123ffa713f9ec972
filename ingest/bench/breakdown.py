"""`tower bench parse --breakdown`: client CPU per message of the ingest hot path, step by step.

The bench's feed (Binance aggTrade frames from the flood server's builder, 10 symbols, contiguous ids)
goes through each step of `tower ingest` in isolation, on one core, timed with the process CPU clock:

- framing: the WebSocket client (`ingest.wire`) reading the frames over loopback from the flood server
  (its own process, as fast as the client reads: socket reads included);
- decode + validate: JSON to a validated message (whatever the Binance adapter uses for it);
- parse rest: the adapter's `parse` minus the above (venue dispatch, dedup/gap state, the row);
- queue hop: the runtime's groups of `STASH_ROWS` rows through an asyncio.Queue, as Link -> Writer;
- record: row -> COPY record into the batch (the writer's collector);
- COPY encode: asyncpg's binary COPY of those records into a temporary table, client CPU only (the
  server works in its own process); needs a database (`TOWER_DSN`), else it is left out.

With a database it also measures the whole thing at once, `end to end`: `tower bench ingest`'s paced run
(the real connector and writer in this process, the flood server in its own) at END_TO_END_RATE, once for
END_TO_END_S and once for twice that; the difference in this process's CPU over the difference in rows
committed is the marginal cost of a message (start-up and shutdown cancel out). It includes what the
steps leave out (the event loop, the reader loop, timers, the writer's tasks, metrics and the database
protocol) and is the figure against the issue's target.

Runnable as a script against any checkout (`PYTHONPATH=<checkout> python ingest/bench/breakdown.py`),
so a base and a branch can be measured alternately in one session and compared as ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from ingest import wire
from ingest.bench.flood import FloodServer, build_frames
from ingest.rows import COLUMNS, record
from ingest.runtime import STASH_ROWS
from ingest.service import tune_gc
from ingest.venues import binance

SYMBOLS = [f"BENCH{i}USDT" for i in range(10)]
END_TO_END_RATE = 20_000.0  # msgs/s: a rate one process sustains with room to spare, so nothing spills
END_TO_END_S = 5.0


async def _framing_cpu(frames: int) -> float:
    """Client CPU to read `frames` aggTrade frames over loopback from the flood server (its own process):
    socket reads, WebSocket framing and the reader's lists, nothing else."""
    server = await FloodServer(frames, SYMBOLS, None).start()
    try:
        ws = await wire.connect(server.root + "/market/ws", 10)
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["bench0usdt@aggTrade"], "id": 1}).decode())
        got, start = 0, time.process_time()
        async for chunk in ws.messages():
            got += len(chunk)
            if got > frames:  # the ack, then every frame
                break
        spent = time.process_time() - start
        await ws.close()
        return spent
    finally:
        server.stop()


def _cpu(fn: Callable[..., object], *args: object) -> float:
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def _each(fn: Callable[[bytes], object], payloads: list[bytes]) -> None:
    for p in payloads:
        fn(p)


def _parse_all(venue: binance.Binance, payloads: list[bytes], recv: datetime, into: list) -> None:
    for p in payloads:
        into.extend(venue.parse(p, recv).rows)


def _decoder() -> Callable[[bytes], object]:
    """JSON -> validated message, as this checkout's adapter does it."""
    hot = getattr(binance, "HOT_FRAMES", None)
    if hot is not None:
        return hot.decode
    model = binance.AggTradeMsg
    return lambda p: model.model_validate(orjson.loads(p))


async def _copy_cpu(dsn: str, records: list[tuple], batch_rows: int = 5000) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        with contextlib.suppress(ImportError):  # the writer's timestamp codec (checkouts before issue 13: none)
            from ingest.pgcodecs import use_fast_timestamps

            await use_fast_timestamps(conn)
        await conn.execute("CREATE TEMP TABLE breakdown_trades (LIKE ops.raw_trades)")
        start = time.process_time()
        for i in range(0, len(records), batch_rows):
            await conn.copy_records_to_table(
                "breakdown_trades", columns=COLUMNS["raw_trades"], records=records[i : i + batch_rows]
            )
        return time.process_time() - start
    finally:
        await conn.close()


def run_breakdown(frames: int = 100_000, rounds: int = 5, dsn: str | None = None) -> int:
    try:
        from tower.eventloop import run  # uvloop, as `tower ingest` runs (checkouts before issue 13: stdlib)
    except ImportError:
        run = asyncio.run
    return run(breakdown(frames, rounds, dsn))


async def breakdown(frames: int, rounds: int, dsn: str | None) -> int:
    tune_gc()  # as `tower ingest` runs: without it, the cycle collector's scans of what a step keeps dominate
    wire_frames = build_frames(frames, SYMBOLS, 1_764_072_000_000, 100_000)
    payloads = [f[4:] if f[1] == 126 else f[2:] for f in wire_frames]  # the frames' JSON text
    recv = datetime.now(UTC)
    decode = _decoder()
    best: dict[str, float] = {}

    def keep(step: str, seconds: float) -> None:
        best[step] = min(best.get(step, seconds), seconds)

    for _ in range(rounds):
        keep("framing", await _framing_cpu(frames))
        keep("decode + validate", _cpu(_each, decode, payloads))
        venue = binance.Binance(SYMBOLS, derivs=False)
        rows: list = []
        keep("parse (all)", _cpu(_parse_all, venue, payloads, recv, rows))
        if len(rows) != frames:
            raise RuntimeError(f"parse: {len(rows)} rows from {frames} frames")
        keep("queue hop", _cpu(_hops, rows))
        records: list[tuple] = []
        keep("record", _cpu(_collect, rows, records))
        if dsn:
            keep("COPY encode", await _copy_cpu(dsn, records))
    best["parse rest"] = best.pop("parse (all)") - best["decode + validate"]
    total = sum(best.values())
    whole = await _end_to_end_us(dsn) if dsn else None
    for step in ("framing", "decode + validate", "parse rest", "queue hop", "record", "COPY encode"):
        if step in best:
            print(f"  {step:<18} {best[step] / frames * 1e6:6.2f} µs/msg")
    print(f"  {'sum of the steps':<18} {total / frames * 1e6:6.2f} µs/msg")
    steps = " ".join(f"{k.split()[0].lower()}_us={v / frames * 1e6:.2f}" for k, v in best.items())
    if whole is not None:
        print(f"  {'end to end':<18} {whole:6.2f} µs/msg (marginal, paced at {END_TO_END_RATE:g} msgs/s)")
        steps += f" end_to_end_us={whole:.2f}"
    print(f"RESULT breakdown total_us={total / frames * 1e6:.2f} {steps}", flush=True)
    return 0


async def _end_to_end_us(dsn: str) -> float:
    """Client CPU per committed row of a paced run through the real connector and writer."""
    import tempfile
    from pathlib import Path

    from ingest.bench import throughput
    from ingest.settings import IngestSettings

    runs = []
    for seconds in (END_TO_END_S, 2 * END_TO_END_S):
        with tempfile.TemporaryDirectory(prefix="tower-breakdown-") as spill:
            settings = IngestSettings(spill_dir=Path(spill))  # type: ignore[call-arg]
            await throughput._cleanup(dsn)
            try:
                start = time.process_time()
                meter = await throughput.end_to_end(dsn, seconds, END_TO_END_RATE, SYMBOLS, settings)
                spent = time.process_time() - start
            finally:
                await throughput._cleanup(dsn)
        if meter.spilled_rows or not meter.rows:
            raise RuntimeError(f"end to end: {meter.rows} rows committed, {meter.spilled_rows} spilled: not clean")
        runs.append((spent, meter.rows))
    (short_cpu, short_rows), (long_cpu, long_rows) = runs
    return (long_cpu - short_cpu) / (long_rows - short_rows) * 1e6


def _hops(rows: list) -> None:
    """Groups of STASH_ROWS rows through a queue, as the runtime hands them to the writer."""
    queue: asyncio.Queue[list] = asyncio.Queue(1000)
    stash: list = []
    for row in rows:
        stash.extend((row,))
        if len(stash) >= STASH_ROWS:
            queue.put_nowait(stash)
            stash = []
            queue.get_nowait()


def _collect(rows: list, into: list[tuple]) -> None:
    """The writer's collector: each row becomes its COPY record in the batch of its table."""
    batch: dict[str, list[tuple]] = {}
    for row in rows:
        batch.setdefault(row.table, []).append(record(row))
    into.extend(batch.get("raw_trades", ()))


if __name__ == "__main__":
    sys.exit(run_breakdown(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, dsn=os.environ.get("TOWER_DSN")))
