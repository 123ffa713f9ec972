"""`tower bench ingest`: pre-built aggTrade frames through the real connector and writer into the database,
against the raw COPY ceiling measured on the same machine in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from ingest.bench.flood import FloodServer
from ingest.rows import COLUMNS
from ingest.runtime import RuntimeConfig, run_venue
from ingest.service import tune_gc
from ingest.settings import IngestSettings
from ingest.venues.base import Route
from ingest.venues.binance import Binance
from ingest.writer import Batch, Writer

RECV_TS = COLUMNS["raw_trades"].index("recv_ts")

BENCH_VENUE = "bench"
COPY_VENUE = "bench-copy"
FLOOD_CEILING_PER_S = 150_000  # frames pre-built per second of flood: more than one core can ingest
QUIET_WAIT_S = 60.0  # how long the ceiling waits for another session's replay to finish before refusing
# What the writer's replay path runs (ingest/sql/merge.sql): a session running it is writing raw_trades
# at the same time as the ceiling would, and would skew it.
_REPLAYS = """
SELECT pid, left(query, 80) AS query FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%stage_raw_%'
"""


class BenchBinance(Binance):
    """The real Binance adapter, writing under its own venue name so benchmark rows never mix with real ones."""

    name = BENCH_VENUE

    def routes(self) -> list[Route]:
        return [r for r in super().routes() if r.name.startswith("market")]


class Meter:
    def __init__(self) -> None:
        self.rows = 0
        self.fully_written = True  # every writer committed everything: nothing was left in a spill file
        self.first_recv: float | None = None
        self.last_commit = 0.0
        self.latencies_ms: list[float] = []

    def on_commit(self, batch: Batch, committed_at: float) -> None:
        records = batch.records.get("raw_trades", ())
        if not records:
            return
        self.rows += len(records)
        self.last_commit = committed_at
        first = records[0][RECV_TS].timestamp()
        self.first_recv = first if self.first_recv is None else min(self.first_recv, first)
        for r in records[::16]:  # a sample is enough for percentiles
            self.latencies_ms.append((committed_at - r[RECV_TS].timestamp()) * 1000)


async def _cleanup(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM ops.raw_trades WHERE venue = ANY($1)", [BENCH_VENUE, COPY_VENUE])
        await conn.execute("DELETE FROM ops.connection_events WHERE venue = $1", BENCH_VENUE)
        await conn.execute("DELETE FROM ops.rejected_messages WHERE venue = $1", BENCH_VENUE)
        await conn.execute("DELETE FROM ops.feed_gaps WHERE venue = $1", BENCH_VENUE)
    finally:
        await conn.close()


def worker_settings(settings: IngestSettings, spill_dir: Path, index: int) -> IngestSettings:
    """A bench worker's settings: the bench's private spill directory, one spill file per worker."""
    return settings.model_copy(update={"spill_dir": spill_dir / f"p{index}"})


async def end_to_end(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings
) -> Meter:
    count = int(seconds * (rate or FLOOD_CEILING_PER_S))
    print(f"pre-building {count:,} aggTrade frames over {len(symbols)} symbols ...", flush=True)
    server = await FloodServer(count, symbols, rate).start()
    meter = Meter()
    writer = Writer(dsn, settings.writer_config("bench"), on_commit=meter.on_commit)
    venue = BenchBinance(symbols, ws_url=server.root, derivs=False)
    stop = asyncio.Event()
    await writer.start()
    task = asyncio.create_task(run_venue(venue, writer, RuntimeConfig(stale_after_s=60), stop))
    try:
        print(
            f"flooding for {seconds:g} s" + (f" at {rate:,.0f} frames/s" if rate else " as fast as possible"),
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), seconds)
    finally:
        stop.set()
        await task
        # The figure is first receive -> last commit: the drain after the flood is part of it, so let it end.
        meter.fully_written = await writer.close(drain_timeout_s=max(120.0, 10 * seconds))
        server.stop()
    if venue.counters.get("gap") or any(k.startswith("rejected") for k in venue.counters):
        print(f"warning: unexpected venue counters {dict(venue.counters)}")
    return meter


async def copy_ceiling(dsn: str, rows: int, batch_rows: int, dedup_path: bool = False, connections: int = 1) -> float:
    """Raw COPY of ready-made records into the same table, same batch size, on as many parallel connections
    as the end-to-end run had writers; with dedup_path, the writer's replay path instead (staging table +
    INSERT ... ON CONFLICT DO NOTHING)."""
    now = datetime.now(UTC)
    tag = "dedup" if dedup_path else "copy"
    records = [(COPY_VENUE, f"SYM{i % 10}", now, now, f"{tag}{i}", 50_000.0, 1.0, "buy", "ws") for i in range(rows)]
    writer = Writer(dsn)
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]

    async def copy_share(conn: asyncpg.Connection, share: list[tuple]) -> None:
        for start in range(0, len(share), batch_rows):
            chunk = share[start : start + batch_rows]
            if dedup_path:
                async with conn.transaction():  # the staging table empties on commit
                    await writer.merge(conn, "raw_trades", chunk)
            else:
                await conn.copy_records_to_table(
                    "raw_trades", schema_name="ops", columns=COLUMNS["raw_trades"], records=chunk
                )

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(copy_share(c, records[i::connections]) for i, c in enumerate(conns)))
        return rows / (time.perf_counter() - t0)
    finally:
        for c in conns:
            await c.close()


def _bench_worker(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings, out
) -> None:
    tune_gc()
    meter = asyncio.run(end_to_end(dsn, seconds, rate, symbols, settings))
    out.send((meter.rows, meter.first_recv, meter.last_commit, meter.latencies_ms, meter.fully_written))


async def end_to_end_processes(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings, processes: int
) -> Meter:
    """As `tower ingest --processes N`: symbols split over N workers, each its own connection and writer
    (and its own flood server, so the venue side also scales); the figures are their sum."""
    ctx = multiprocessing.get_context("spawn")
    groups = [symbols[i::processes] for i in range(processes) if symbols[i::processes]]
    share = None if rate is None else rate / len(groups)
    pipes, workers = [], []
    for index, group in enumerate(groups):
        receive, send = ctx.Pipe(duplex=False)
        worker = ctx.Process(
            target=_bench_worker,
            args=(dsn, seconds, share, group, worker_settings(settings, settings.spill_dir, index), send),
        )
        worker.start()
        pipes.append(receive)
        workers.append(worker)
    loop = asyncio.get_running_loop()
    meter = Meter()
    for receive, worker in zip(pipes, workers, strict=True):
        rows, first, last, latencies, fully = await loop.run_in_executor(None, receive.recv)
        await loop.run_in_executor(None, worker.join)
        meter.fully_written &= fully and worker.exitcode == 0
        meter.rows += rows
        if first is not None:
            meter.first_recv = first if meter.first_recv is None else min(meter.first_recv, first)
        meter.last_commit = max(meter.last_commit, last)
        meter.latencies_ms += latencies
    return meter


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def replays_elsewhere(dsn: str, wait_s: float = QUIET_WAIT_S) -> list[str]:
    """Other sessions replaying into the raw tables, still running after waiting up to wait_s; [] = quiet."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            busy = [f"pid {r['pid']}: {r['query']}" for r in await conn.fetch(_REPLAYS)]
            if not busy or time.monotonic() >= deadline:
                return busy
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def run_bench(
    dsn: str, seconds: float, rate: float | None, n_symbols: int, settings: IngestSettings, processes: int = 1
) -> int:
    # A private spill directory: a bench never replays another run's leftovers, nor leaves its own behind.
    spill_dir = Path(tempfile.mkdtemp(prefix="tower-bench-spill-"))
    try:
        return await _run_bench(dsn, seconds, rate, n_symbols, settings, processes, spill_dir)
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


async def _run_bench(
    dsn: str,
    seconds: float,
    rate: float | None,
    n_symbols: int,
    settings: IngestSettings,
    processes: int,
    spill_dir: Path,
) -> int:
    symbols = [f"BENCH{i}USDT" for i in range(n_symbols)]
    tune_gc()
    await _cleanup(dsn)
    try:
        if processes > 1:
            print(f"ingest in {processes} worker processes (as `tower ingest --processes {processes}`)", flush=True)
            meter = await end_to_end_processes(
                dsn, seconds, rate, symbols, settings.model_copy(update={"spill_dir": spill_dir}), processes
            )
        else:
            meter = await end_to_end(dsn, seconds, rate, symbols, worker_settings(settings, spill_dir, 0))
        if not meter.fully_written:
            print(
                "error: the end-to-end run did not commit everything it received (rows were left in its spill "
                "file); no figures reported"
            )
            return 1
        if not meter.rows or meter.first_recv is None:
            print("no rows were committed: nothing to report")
            return 1
        busy = await replays_elsewhere(dsn)
        if busy:
            print(
                f"error: another session is still replaying rows into the raw tables after {QUIET_WAIT_S:g} s "
                f"({'; '.join(busy)}); refusing to measure the COPY ceiling beside it"
            )
            return 1
        elapsed = meter.last_commit - meter.first_recv
        msgs_per_s = meter.rows / elapsed
        print(f"end-to-end: {meter.rows:,} rows committed in {elapsed:.2f} s (first receive -> last commit)")
        ceiling = await copy_ceiling(dsn, min(meter.rows, 1_000_000), settings.batch_rows, connections=processes)
        print(
            f"COPY ceiling: {ceiling:,.0f} rows/s ({settings.batch_rows}-row batches, same table, "
            f"{processes} connection(s), one per ingest writer)"
        )
        merge = await copy_ceiling(dsn, min(meter.rows, 300_000), settings.batch_rows, dedup_path=True)
        print(
            f"replay/dedup path (staging COPY + INSERT ON CONFLICT DO NOTHING): {merge:,.0f} rows/s "
            f"= {merge / ceiling:.2f}x plain COPY"
        )
    finally:
        await _cleanup(dsn)
    ratio = msgs_per_s / ceiling
    p50, p99 = percentile(meter.latencies_ms, 50), percentile(meter.latencies_ms, 99)
    print(f"ratio end-to-end / COPY ceiling: {ratio:.2f}")
    print(f"receive -> commit latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"RESULT msgs_per_s={msgs_per_s:.0f} copy_rows_per_s={ceiling:.0f} ratio={ratio:.2f} "
        f"p50_ms={p50:.1f} p99_ms={p99:.1f}"
    )
    return 0
