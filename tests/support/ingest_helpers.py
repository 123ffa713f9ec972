"""Running the real ingest service against loopback venues inside a test."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

# CPython 3.11.7 bug (gh-106905, fixed in 3.11.8): a GC pass during ast.parse can raise "AST constructor
# recursion depth mismatch". The hypothesis plugin imports (and pytest rewrites) hypothesis lazily at
# session end, after these tests left plenty of garbage behind; importing it now, at collection, avoids that.
import hypothesis  # noqa: F401

from ingest.runtime import RuntimeConfig
from ingest.service import IngestResult, ingest
from ingest.venues.base import Venue
from ingest.writer import Writer, WriterConfig

FAST = RuntimeConfig(stale_after_s=10.0, backoff_initial_s=0.05, backoff_cap_s=0.2)


class Running:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.writer: Writer | None = None

    async def finish(self) -> IngestResult:
        self.stop.set()
        assert self.task is not None
        return await asyncio.wait_for(self.task, 30)


@asynccontextmanager
async def running(
    dsn: str,
    venues: list[Venue],
    tmp_path: Path,
    runtime: RuntimeConfig = FAST,
    writer_config: WriterConfig | None = None,
    backfill_every_s: float = 5.0,
):
    run = Running()
    run.writer = Writer(dsn, writer_config or WriterConfig(spill_path=tmp_path / "spill.jsonl", flush_s=0.05))
    run.task = asyncio.create_task(
        ingest(dsn, venues, runtime=runtime, stop=run.stop, writer=run.writer, backfill_every_s=backfill_every_s)
    )
    try:
        yield run
    finally:
        if not run.task.done():
            await run.finish()


async def wait_until(conn: asyncpg.Connection, sql: str, expected, *args, within_s: float = 15.0):
    """Polls `sql` until it returns `expected` (a value or a predicate); returns the last value."""
    deadline = time.monotonic() + within_s
    while True:
        value = await conn.fetchval(sql, *args)
        if (expected(value) if callable(expected) else value == expected) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


NOW_MS = int(datetime.now(UTC).timestamp() * 1000)


def env(monkeypatch, dsn: str, tmp_path) -> None:
    """The environment `tower ingest` runs with in tests: this database, a private spill dir, quick retries."""
    monkeypatch.setenv("TOWER_DSN", dsn)
    monkeypatch.setenv("TOWER_INGEST_SPILL_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("TOWER_INGEST_BACKOFF_CAP_S", "0.2")
