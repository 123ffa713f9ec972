"""Running ingest: venues + runtime + writer, for a duration or until stopped, then flush everything."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from ingest.activation import Activation
from ingest.backfill import run_backfill
from ingest.heartbeat import heartbeat_every
from ingest.poller import run_polls
from ingest.runtime import RuntimeConfig, run_venue
from ingest.universe import REGISTER_SQL
from ingest.venues.base import Venue
from ingest.writer import Writer, WriterConfig

log = logging.getLogger("ingest")


NEVER_CONNECTED = 4  # exit code of a run in which some venue's connections never opened (wrong URL, no network)


@dataclass
class IngestResult:
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    writer_stats: dict[str, int] = field(default_factory=dict)
    fully_written: bool = True
    never_connected: list[str] = field(default_factory=list)  # venues none of whose routes ever connected


def tune_gc() -> None:
    """The hot path allocates millions of short-lived, acyclic objects (frames, rows, datetimes); the
    default gen-0 threshold (700) runs the cycle collector thousands of times a second for nothing.
    Measured: +12% msgs/s in `tower bench ingest`."""
    gc.collect()
    gc.freeze()  # what exists at startup (modules, models) is never garbage: stop rescanning it
    gc.set_threshold(50_000, 20, 100)


async def register_instruments(dsn: str, venues: list[Venue], retry_cap_s: float = 30.0) -> None:
    """Symbols we ingest must be in ops.instruments (features join on it); adds missing ones, inactive (they
    become active when their first data is stored: `Activation`). Runs beside the connectors and retries: a
    database that starts after us must not stop the ingest."""
    rows = [(v.name, s, *v.instrument(s), v.contract_size(s)) for v in venues for s in v.symbols]
    delay = 0.5
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                await conn.executemany(REGISTER_SQL, rows)
                return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("cannot register instruments yet (%s); retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_cap_s)


async def stored_contract_sizes(dsn: str, venues: list[Venue]) -> dict[str, dict[str, float]]:
    """venue -> symbol -> contract size from ops.instruments, for the venues that count in contracts: the
    fallback when a venue's REST metadata cannot be read. A database that is away leaves it empty."""
    names = [v.name for v in venues if v.counts_contracts]
    if not names:
        return {}
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT venue, symbol, contract_size FROM ops.instruments "
                "WHERE venue = any($1::text[]) AND contract_size IS NOT NULL",
                names,
            )
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log.warning("cannot read stored contract sizes from the database (%s)", exc)
        return {}
    sizes: dict[str, dict[str, float]] = {}
    for r in rows:
        sizes.setdefault(r["venue"], {})[r["symbol"]] = r["contract_size"]
    return sizes


async def ingest(
    dsn: str,
    venues: list[Venue],
    *,
    duration_s: float | None = None,
    runtime: RuntimeConfig | None = None,
    writer_config: WriterConfig | None = None,
    stop: asyncio.Event | None = None,
    writer: Writer | None = None,
    runtime_for: Callable[[Venue], RuntimeConfig] | None = None,
    backfill_every_s: float = 5.0,
) -> IngestResult:
    stop = stop or asyncio.Event()
    stored = await stored_contract_sizes(dsn, venues)
    await asyncio.gather(*(v.prepare(stored.get(v.name, {})) for v in venues))
    instruments = asyncio.create_task(register_instruments(dsn, venues))
    writer = writer or Writer(dsn, writer_config)
    activation = Activation(dsn, venues)
    writer.commit_hooks.append(activation.on_commit)
    activating = asyncio.create_task(activation.run(), name="activation")
    await writer.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    runtime_for = runtime_for or (lambda v: _config_for(v, runtime))
    tasks = [asyncio.create_task(run_venue(v, writer, runtime_for(v), stop), name=f"venue {v.name}") for v in venues]
    # Polls are cancelled at stop, not awaited: a request in flight has nothing worth waiting for.
    polls = [asyncio.create_task(run_polls(v, writer, stop), name=f"polls {v.name}") for v in venues if v.polls()]
    # Gaps are filled from REST beside the stream, cancelled at stop like the polls (a later run or
    # `tower backfill` picks up what is left open).
    polls.append(asyncio.create_task(run_backfill(dsn, venues, stop, backfill_every_s), name="backfill"))
    report = asyncio.create_task(_report_every(venues, writer, 60.0, stop))
    beat = asyncio.create_task(heartbeat_every(dsn, venues, writer, 60.0, stop))
    try:
        if duration_s is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
            stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        report.cancel()
        beat.cancel()
        instruments.cancel()
        for t in tasks + polls:
            t.cancel()
        await asyncio.gather(*tasks, *polls, return_exceptions=True)
        fully = await writer.close()
        activating.cancel()
        await asyncio.gather(activating, return_exceptions=True)
        await activation.flush()  # what the last commits delivered
        writer.commit_hooks.remove(activation.on_commit)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    never = [v.name for v in venues if not v.counters["connects"]]
    result = IngestResult({v.name: dict(v.counters) for v in venues}, dict(writer.stats), fully, never)
    log.info("stopped: venues %s; writer %s", result.counters, result.writer_stats)
    return result


def _config_for(venue: Venue, runtime: RuntimeConfig | None) -> RuntimeConfig:
    return runtime if runtime is not None else RuntimeConfig(rotate_after_s=venue.rotate_after_s)


async def _report_every(venues: list[Venue], writer: Writer, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(every_s)
        log.info(
            "progress: venues %s; writer %s; queue %d frames",
            {v.name: dict(v.counters) for v in venues},
            dict(writer.stats),
            writer.queued_groups(),
        )
