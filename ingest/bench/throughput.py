"""`tower bench ingest`: pre-built aggTrade frames through the real connector and writer into the database,
against the raw COPY ceiling measured on the same machine in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from ingest.bench.flood import FloodServer
from ingest.bench.sustained import (
    MIN_STEP_S,
    StepFigures,
    Verdict,
    judge_workers,
    percentile,
    queue_grew,
    search,
)
from ingest.rows import COLUMNS
from ingest.runtime import RuntimeConfig, run_venue
from ingest.service import tune_gc
from ingest.settings import IngestSettings
from ingest.venues.base import Route
from ingest.venues.binance import Binance
from ingest.writer import Batch, Writer
from tower import eventloop

RECV_TS = COLUMNS["raw_trades"].index("recv_ts")

BENCH_VENUE = "bench"
COPY_VENUE = "bench-copy"
FLOOD_CEILING_PER_S = 150_000  # frames pre-built per second of flood: more than one core can ingest
SAMPLE_S = 0.5  # how often a paced step samples the writer's backlog
DELIVERY_GRACE_S = 1.0  # a paced step's time to connect and read its last frames, beyond its length
QUIET_WAIT_S = 60.0  # how long the ceiling waits for another session's replay to finish before refusing
CEILING_TABLE = "bench_copy_ceiling"  # the scratch table of the raw COPY ceiling, dropped after it
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
        self.sent = 0  # frames the flood server was asked to send
        self.spilled_rows = 0
        self.paused_s = 0.0  # readers waiting for room in the writer
        self.peak_rss_mb = 0.0  # the worker process's peak resident memory so far
        self.queue_depths: list[int] = []  # the writer's backlog in rows, every SAMPLE_S while flooding

    def absorb(self, other: Meter) -> None:
        """Adds another worker's figures: the sum over workers, as one ingest service."""
        self.fully_written &= other.fully_written
        self.rows += other.rows
        if other.first_recv is not None:
            self.first_recv = other.first_recv if self.first_recv is None else min(self.first_recv, other.first_recv)
        self.last_commit = max(self.last_commit, other.last_commit)
        self.latencies_ms += other.latencies_ms
        self.sent += other.sent
        self.spilled_rows += other.spilled_rows
        self.paused_s += other.paused_s
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)

    def step(self, rate: float, batch_rows: int) -> StepFigures:
        return StepFigures(
            rate,
            self.sent,
            self.rows,
            self.spilled_rows,
            self.queue_depths,
            self.latencies_ms,
            batch_rows,
            self.paused_s,
        )

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


def backlog_rows(writer: Writer) -> int:
    """Rows waiting in the writer: batched and not yet committed, plus queued groups (each at least a row)."""
    return writer.pending_rows + writer.queued_groups()


async def _sample_backlog(writer: Writer, meter: Meter) -> None:
    while True:
        await asyncio.sleep(SAMPLE_S)
        meter.queue_depths.append(backlog_rows(writer))


async def _flood_ends(server: FloodServer, seconds: float, rate: float | None, task: asyncio.Task) -> None:
    """As fast as possible: for `seconds`. Paced: until the server has sent every frame (at most a grace past
    `seconds`), then a moment for the connector to read what is still in the socket."""
    if rate is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), seconds)
        return
    loop = asyncio.get_running_loop()
    if await loop.run_in_executor(None, server.done.poll, seconds + DELIVERY_GRACE_S):
        await asyncio.sleep(min(DELIVERY_GRACE_S, 0.2))


async def end_to_end(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings
) -> Meter:
    count = int(seconds * (rate or FLOOD_CEILING_PER_S))
    server = await FloodServer(count, symbols, rate).start()
    meter = Meter()
    meter.sent = count
    writer = Writer(dsn, settings.writer_config("bench"), on_commit=meter.on_commit)
    venue = BenchBinance(symbols, ws_url=server.root, derivs=False)
    stop = asyncio.Event()
    await writer.start()
    task = asyncio.create_task(run_venue(venue, writer, RuntimeConfig(stale_after_s=60), stop))
    sampler = asyncio.create_task(_sample_backlog(writer, meter))
    try:
        await _flood_ends(server, seconds, rate, task)
    finally:
        sampler.cancel()
        stop.set()
        await task
        # The figure is first receive -> last commit: the drain after the flood is part of it, so let it end.
        meter.fully_written = await writer.close(drain_timeout_s=max(120.0, 10 * seconds))
        meter.spilled_rows = writer.stats["spilled_rows"]
        meter.paused_s = writer.stats["paused_ms"] / 1000
        meter.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        server.stop()
    if venue.counters.get("gap") or any(k.startswith("rejected") for k in venue.counters):
        print(f"warning: unexpected venue counters {dict(venue.counters)}")
    return meter


async def copy_ceiling(
    dsn: str,
    rows: int,
    batch_rows: int,
    dedup_path: bool = False,
    connections: int = 1,
    table: str = "raw_trades",
) -> float:
    """Raw COPY of ready-made records into `table` (default the real one), same batch size, on `connections`
    parallel connections; with dedup_path, the writer's replay path instead (staging table +
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
                await conn.copy_records_to_table(table, schema_name="ops", columns=COLUMNS["raw_trades"], records=chunk)

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
    out.send(eventloop.run(end_to_end(dsn, seconds, rate, symbols, settings)))


async def end_to_end_processes(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings, processes: int
) -> list[Meter]:
    """As `tower ingest --processes N`: symbols split over N workers, each its own connection and writer
    (and its own flood server, so the venue side also scales); one meter per worker."""
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
    meters = []
    for receive, worker in zip(pipes, workers, strict=True):
        meter = await loop.run_in_executor(None, receive.recv)
        await loop.run_in_executor(None, worker.join)
        meter.fully_written &= worker.exitcode == 0
        meters.append(meter)
    return meters


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


@dataclass
class StepPlan:
    """How `tower bench ingest` looks for the sustained rate (total frames per second over all workers)."""

    step_seconds: float = 20.0
    start_rate: float = 5000.0
    max_rate: float = 160_000.0
    precision: float = 0.1  # stop bisecting when the last pass and first fail are this fraction apart
    rate: float | None = None  # one step at this rate instead of the search


async def run_bench(
    dsn: str, seconds: float, n_symbols: int, settings: IngestSettings, processes: int, plan: StepPlan
) -> int:
    # A private spill directory: a bench never replays another run's leftovers, nor leaves its own behind.
    spill_dir = Path(tempfile.mkdtemp(prefix="tower-bench-spill-"))
    try:
        return await _run_bench(dsn, seconds, n_symbols, settings, processes, plan, spill_dir)
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


async def _ingest(
    dsn: str, seconds: float, rate: float | None, symbols: list[str], settings: IngestSettings, processes: int
) -> list[Meter]:
    """One run through `processes` workers spilling under settings.spill_dir; one meter per worker."""
    if processes > 1:
        return await end_to_end_processes(dsn, seconds, rate, symbols, settings, processes)
    return [await end_to_end(dsn, seconds, rate, symbols, worker_settings(settings, settings.spill_dir, 0))]


async def _step(
    dsn: str, plan: StepPlan, rate: float, symbols: list[str], settings: IngestSettings, processes: int, n: int
) -> Verdict:
    await _cleanup(dsn)  # steps do not compound: each writes into a table without the last one's rows
    step_settings = settings.model_copy(update={"spill_dir": settings.spill_dir / f"step{n}"})
    meters = await _ingest(dsn, plan.step_seconds, rate, symbols, step_settings, processes)
    verdict = judge_workers([m.step(rate / len(meters), settings.batch_rows) for m in meters])
    if not all(m.fully_written for m in meters):
        verdict = Verdict(False, [*verdict.reasons, "rows were left in the spill file"], verdict.p99_ms)
    total = sum(m.rows for m in meters)
    # The busiest worker's backlog at each sample, as first-third mean -> last-third mean (what is judged).
    _, first, last = queue_grew([max(d) for d in zip(*(m.queue_depths for m in meters), strict=False)], 0)
    print(
        f"step {n}: {rate:,.0f} msgs/s for {plan.step_seconds:g} s: {'pass' if verdict.passed else 'FAIL'} "
        f"({total:,} rows committed, p99 receive -> commit {verdict.p99_ms:,.0f} ms, "
        f"writer backlog {first:,.0f} -> {last:,.0f} rows, spilled {sum(m.spilled_rows for m in meters):,}, "
        f"readers paused {sum(m.paused_s for m in meters):.1f} s, "
        f"peak RSS so far {max(m.peak_rss_mb for m in meters):,.0f} MB)"
        + ("" if verdict.passed else f": {'; '.join(verdict.reasons)}"),
        flush=True,
    )
    return verdict


async def _sustained(
    dsn: str, plan: StepPlan, symbols: list[str], settings: IngestSettings, processes: int
) -> tuple[float, Verdict | None]:
    steps = 0

    async def try_rate(rate: float) -> Verdict:
        nonlocal steps
        steps += 1
        return await _step(dsn, plan, rate, symbols, settings, processes, steps)

    if plan.rate is not None:
        verdict = await try_rate(plan.rate)
        return (plan.rate, verdict) if verdict.passed else (0.0, None)
    return await search(plan.start_rate, plan.max_rate, plan.precision, try_rate)


async def _raw_ceiling(dsn: str, rows: int, batch_rows: int) -> float:
    """One connection's COPY into a scratch table shaped like ops.raw_trades without its indexes: the
    ceiling that neither the dedup index nor the hypertable's chunk routing lowers."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS ops.{CEILING_TABLE}")  # a crashed run's leftover
        await conn.execute(f"CREATE TABLE ops.{CEILING_TABLE} (LIKE ops.raw_trades INCLUDING DEFAULTS)")
        return await copy_ceiling(dsn, rows, batch_rows, table=CEILING_TABLE)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS ops.{CEILING_TABLE}")
        await conn.close()


async def _run_bench(
    dsn: str,
    seconds: float,
    n_symbols: int,
    settings: IngestSettings,
    processes: int,
    plan: StepPlan,
    spill_dir: Path,
) -> int:
    symbols = [f"BENCH{i}USDT" for i in range(n_symbols)]
    settings = settings.model_copy(update={"spill_dir": spill_dir})
    tune_gc()
    await _cleanup(dsn)
    try:
        if processes > 1:
            print(f"ingest in {processes} worker processes (as `tower ingest --processes {processes}`)", flush=True)
        if plan.step_seconds < MIN_STEP_S:
            print(
                f"note: steps of {plan.step_seconds:g} s (< {MIN_STEP_S:g} s) are a smoke test, not a sustained figure"
            )
        sustained, at_sustained = await _sustained(dsn, plan, symbols, settings, processes)
        print(f"sustained: {sustained:,.0f} msgs/s (the highest paced rate whose step passed)", flush=True)
        await _cleanup(dsn)
        print(f"burst: flooding for {seconds:g} s as fast as possible ...", flush=True)
        meters = await _ingest(
            dsn, seconds, None, symbols, settings.model_copy(update={"spill_dir": spill_dir / "burst"}), processes
        )
        meter = Meter()
        for m in meters:
            meter.absorb(m)
        if not meter.fully_written:
            print(
                "error: the burst run did not commit everything it received (rows were left in its spill "
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
        burst = meter.rows / elapsed
        print(
            f"burst: {meter.rows:,} rows committed in {elapsed:.2f} s (first receive -> last commit, catch-up "
            f"through the spill file included; {meter.spilled_rows:,} rows spilled) = {burst:,.0f} msgs/s"
        )
        ceiling_rows = min(meter.rows, 1_000_000)
        raw = await _raw_ceiling(dsn, ceiling_rows, settings.batch_rows)
        print(
            f"raw COPY ceiling: {raw:,.0f} rows/s ({settings.batch_rows}-row batches, 1 connection, scratch table "
            "without the dedup index)"
        )
        ceiling = await copy_ceiling(dsn, ceiling_rows, settings.batch_rows, connections=processes)
        print(
            f"COPY ceiling into ops.raw_trades: {ceiling:,.0f} rows/s ({processes} connection(s), one per ingest "
            "writer)"
        )
        merge = await copy_ceiling(dsn, min(meter.rows, 300_000), settings.batch_rows, dedup_path=True)
        print(
            f"replay/dedup path (staging COPY + INSERT ON CONFLICT DO NOTHING): {merge:,.0f} rows/s "
            f"= {merge / ceiling:.2f}x plain COPY"
        )
    finally:
        await _cleanup(dsn)
    ratio = sustained / raw
    p50, p99 = percentile(meter.latencies_ms, 50), percentile(meter.latencies_ms, 99)
    print(f"burst receive -> commit latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"ratio sustained / raw COPY ceiling: {ratio:.2f}; "
        f"burst / COPY ceiling into ops.raw_trades: {burst / ceiling:.2f}"
    )
    sustained_p99 = at_sustained.p99_ms if at_sustained is not None else 0.0
    print(
        f"RESULT sustained_msgs_per_s={sustained:.0f} burst_msgs_per_s={burst:.0f} copy_rows_per_s={raw:.0f} "
        f"ratio={ratio:.2f} p99_ms={sustained_p99:.0f}"
    )
    return 0
