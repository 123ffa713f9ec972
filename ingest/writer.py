"""The one writer: a bounded queue in, batched binary COPY out, nothing lost while the database is away.

Connectors `await put(rows)`; the queue is bounded, so a writer that cannot keep up slows them down
(backpressure). A collector task turns the queue into batches (flush on size or age) and never
waits for the database; a committer task writes batches in order. When the database is down or
slow, batches wait in memory up to `memory_rows`, past that they are appended to a spill file, and
the committer retries with backoff and replays everything when the database answers again.

Exactly once: the first attempt of a batch is a plain COPY into the hypertable. Any batch that may
already be stored (a retry, a spill replay) or that hits the dedup index (an overlap across process
restarts) goes through a staging table and `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

from ingest import metrics
from ingest.pgcodecs import use_fast_timestamps
from ingest.rows import COLUMNS, Row, record
from tower.privileges import require

log = logging.getLogger("ingest.writer")

SQL_DIR = Path(__file__).parent / "sql"
# The tables with a dedup index (migrations 0300, 0602).
DEDUP_TABLES = ("raw_trades", "raw_book_l1", "raw_derivs", "raw_liquidations")
# Columns that hold datetimes or intervals, to rebuild them from the spill file.
_DATETIME_COLUMNS = {
    t: [i for i, c in enumerate(cols) if c in ("ts", "recv_ts", "detected_at", "from_ts", "to_ts", "next_funding_ts")]
    for t, cols in COLUMNS.items()
}
_INTERVAL_COLUMNS = {t: [i for i, c in enumerate(cols) if c == "funding_interval"] for t, cols in COLUMNS.items()}
# Columns added to a row class after spill files existed, with the value older records mean: such a
# record is one or more columns short and is padded (raw_trades.source, migration 0750).
_ADDED_COLUMNS: dict[str, tuple[object, ...]] = {"raw_trades": ("ws",)}
# Errors about the data, not the connection (class 22 data exception, class 23 constraint violations;
# unique violations are handled by the dedup path before they get here).
POISON_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError, ConnectionError)


def dedup_sql(name: str, table: str) -> str:
    if table not in DEDUP_TABLES:  # identifiers only ever come from this allow-list
        raise ValueError(f"no dedup path for {table}")
    template = (SQL_DIR / name).read_text()
    body = "\n".join(line for line in template.splitlines() if not line.startswith("--"))
    return body.format(table=table, columns=", ".join(COLUMNS[table]))


@dataclass
class Batch:
    records: dict[str, list[tuple]] = field(default_factory=dict)
    rows: int = 0
    maybe_stored: bool = False  # tried before or replayed: use the dedup path


@dataclass
class WriterConfig:
    batch_rows: int = 5000
    flush_s: float = 0.1  # 0.2 s gave p99 ~290 ms at 20k msgs/s: too little margin
    queue_items: int = 1000  # bound of the queue between connectors and the collector (groups of <= 256 rows)
    memory_rows: int = 500_000  # rows held in memory while the database is away; the rest spill
    spill_path: Path = Path(".tower-spill/ingest.jsonl")
    retry_initial_s: float = 0.2
    retry_cap_s: float = 10.0
    connect_timeout_s: float = 5.0


class Writer:
    def __init__(
        self, dsn: str, config: WriterConfig | None = None, on_commit: Callable[[Batch, float], None] | None = None
    ) -> None:
        self.dsn = dsn
        self.config = config or WriterConfig()
        # Called after every commit with the batch (bench meters, instrument activation); never blocking.
        self.commit_hooks: list[Callable[[Batch, float], None]] = [on_commit] if on_commit is not None else []
        self.queue: asyncio.Queue[list[Row]] = asyncio.Queue(self.config.queue_items)
        self.pending: deque[Batch] = deque()
        self.pending_rows = 0
        self.stats: Counter[str] = Counter()
        self._conn: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._collector: asyncio.Task | None = None
        self._committer: asyncio.Task | None = None
        self._stage_sql = {t: dedup_sql("stage.sql", t) for t in DEDUP_TABLES}
        self._merge_sql = {t: dedup_sql("merge.sql", t) for t in DEDUP_TABLES}

    # -- connectors' side -------------------------------------------------------------------------

    async def put(self, rows: list[Row]) -> None:
        if rows:
            await self.queue.put(rows)

    def put_nowait(self, rows: list[Row]) -> bool:
        """Hands rows over if the queue has room; False (nothing taken) when it is full."""
        try:
            self.queue.put_nowait(rows)
        except asyncio.QueueFull:
            return False
        return True

    def queued_groups(self) -> int:
        """Row groups waiting in the queue, not yet batched."""
        return self.queue.qsize()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._check_grants()
        self.config.spill_path.parent.mkdir(parents=True, exist_ok=True)
        if self._spill_files():
            log.warning("found spilled rows from an earlier run in %s; replaying them", self.config.spill_path)
        metrics.watch(self)
        self._collector = asyncio.create_task(self._collect(), name="writer-collector")
        self._committer = asyncio.create_task(self._commit_loop(), name="writer-committer")

    async def _check_grants(self) -> None:
        """A role that may not write would be retried for ever, as if the database were away: refuse it now.
        A database that is away now is not checked (the committer waits for it)."""
        try:
            conn = await asyncpg.connect(self.dsn, timeout=self.config.connect_timeout_s)
        except DB_ERRORS:
            return
        try:
            await require(conn, "INSERT", [f"ops.{table}" for table in COLUMNS])
        finally:
            await conn.close()

    async def close(self, drain_timeout_s: float = 30.0) -> bool:
        """Write everything received; returns False if some rows could only be kept in the spill file."""
        self._closing = True
        await self.queue.put([])  # wakes the collector; it stops once the queue is empty
        assert self._collector and self._committer
        await self._collector
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._committer), drain_timeout_s)
        except TimeoutError:
            # Stop the committer before touching what it works on: cancelled mid-COPY, it is still rolling
            # back on its connection, and closing that connection under it fails the shutdown.
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, *DB_ERRORS):
                await self._committer
            left = self.pending_rows
            while self.pending:
                self._spill(self.pending.popleft())  # the batch cut short may be half stored: replays dedup
            log.error(
                "database unavailable or too slow at shutdown: %d rows kept in %s, replayed on the next start",
                left,
                self.config.spill_path,
            )
            await self._drop_connection()
        if self._conn is not None:
            try:
                await self._conn.close(timeout=self.config.connect_timeout_s)
            except DB_ERRORS:
                self._conn.terminate()
            self._conn = None
        return not self._spill_files()

    # -- collector: queue -> batches ----------------------------------------------------------------

    async def _collect(self) -> None:
        cfg, queue = self.config, self.queue
        batch, started, closing = Batch(), 0.0, False
        while True:
            if batch.rows:
                remaining = cfg.flush_s - (time.monotonic() - started)
                try:
                    item = (
                        queue.get_nowait()
                        if not queue.empty()
                        else await asyncio.wait_for(queue.get(), max(remaining, 0))
                    )
                except TimeoutError:
                    item = None
            else:
                item = await queue.get()
            if item:
                if not batch.rows:
                    started = time.monotonic()
                for row in item:
                    batch.records.setdefault(row.table, []).append(record(row))
                batch.rows += len(item)
            elif item is not None:  # the empty list close() sends: finish what is queued, then stop
                closing = True
            if closing and queue.empty():
                self._enqueue(batch)
                return
            if batch.rows and (batch.rows >= cfg.batch_rows or time.monotonic() - started >= cfg.flush_s):
                self._enqueue(batch)
                batch = Batch()

    def _enqueue(self, batch: Batch) -> None:
        if not batch.rows:
            return
        metrics.batch_accepted(batch)
        if self.pending_rows + batch.rows > self.config.memory_rows:
            self._spill(batch)
        else:
            self.pending.append(batch)
            self.pending_rows += batch.rows
        self._wake.set()

    # -- spill file: append-only JSON lines, one batch per line --------------------------------------

    def _spill(self, batch: Batch) -> None:
        line = orjson.dumps({"records": batch.records}, default=_seconds) + b"\n"
        with open(self.config.spill_path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.stats["spilled_rows"] += batch.rows

    def spill_bytes(self) -> int:
        total = 0
        for path in self._spill_files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def _spill_files(self) -> list[Path]:
        p = self.config.spill_path
        return [f for f in (p.with_suffix(p.suffix + ".replaying"), p) if f.exists() and f.stat().st_size]

    def _read_spill(self, path: Path) -> list[Batch]:
        batches = []
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            try:
                stored = orjson.loads(line)["records"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.error("spill file %s line %d is damaged (a crash mid-write?); skipped", path, n)
                continue
            batch = Batch(maybe_stored=True)
            for table, records in stored.items():
                if table not in COLUMNS:
                    continue
                rebuilt = [_revive(table, r) for r in records]
                batch.records[table] = rebuilt
                batch.rows += len(rebuilt)
            batches.append(batch)
        return batches

    # -- committer: batches -> database -------------------------------------------------------------

    async def _commit_loop(self) -> None:
        delay = self.config.retry_initial_s
        while True:
            work = self._next_work()
            if work is None:
                if self._closing and self._collector is not None and self._collector.done():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            source, batches = work
            try:
                for batch in batches:
                    await self._write_or_set_aside(batch)
                    if source == "memory":
                        self.pending.popleft()
                        self.pending_rows -= batch.rows
                if source != "memory":
                    source.unlink()
                    self.stats["replayed_files"] += 1
                    log.info("replayed %d spilled rows from %s", sum(b.rows for b in batches), source)
                delay = self.config.retry_initial_s
            except DB_ERRORS as exc:
                for batch in batches:
                    batch.maybe_stored = True
                await self._drop_connection()
                self.stats["retries"] += 1
                wait = min(delay, self.config.retry_cap_s) * random.uniform(0.5, 1.0)
                log.warning(
                    "database unavailable (%s: %s); retrying in %.1f s (%d rows in memory, %d spilled)",
                    type(exc).__name__,
                    str(exc)[:200],
                    wait,
                    self.pending_rows,
                    self.stats["spilled_rows"],
                )
                delay = min(delay * 2, self.config.retry_cap_s)
                await asyncio.sleep(wait)

    async def _write_or_set_aside(self, batch: Batch) -> None:
        try:
            await self._write(batch)
        except POISON_ERRORS as exc:
            # The database refused the data itself, not the connection: retrying cannot help, and holding
            # the batch would stall every later one. Keep it on disk for a human instead.
            self._set_aside(batch, exc)

    def _set_aside(self, batch: Batch, exc: Exception) -> None:
        path = self.config.spill_path.with_suffix(".rejected.jsonl")
        with open(path, "ab") as f:
            f.write(orjson.dumps({"error": f"{type(exc).__name__}: {exc}", "records": batch.records}) + b"\n")
        self.stats["rows_set_aside"] += batch.rows
        log.error(
            "the database refused a batch of %d rows (%s: %s); kept in %s", batch.rows, type(exc).__name__, exc, path
        )

    def _next_work(self) -> tuple[str | Path, list[Batch]] | None:
        if self.pending:
            return "memory", [self.pending[0]]
        p = self.config.spill_path
        replaying = p.with_suffix(p.suffix + ".replaying")
        if not (replaying.exists() and replaying.stat().st_size):
            if not (p.exists() and p.stat().st_size):
                return None
            p.rename(replaying)  # new spills go to a fresh file while this one is replayed
        return replaying, self._read_spill(replaying)

    async def _write(self, batch: Batch) -> None:
        conn = await self._connection()
        if not batch.maybe_stored:
            try:
                async with conn.transaction():
                    for table, records in batch.records.items():
                        await conn.copy_records_to_table(
                            table, schema_name="ops", columns=COLUMNS[table], records=records
                        )
                self._committed(batch)
                return
            except asyncpg.UniqueViolationError:
                self.stats["dedup_fallbacks"] += 1  # someone stored part of it already: merge instead
        async with conn.transaction():
            for table, records in batch.records.items():
                if table in DEDUP_TABLES:
                    await self.merge(conn, table, records)
                else:
                    await conn.copy_records_to_table(table, schema_name="ops", columns=COLUMNS[table], records=records)
        self.stats["dedup_batches"] += 1
        self._committed(batch)

    async def merge(self, conn: asyncpg.Connection, table: str, records: list[tuple]) -> None:
        """Stores records that may already be stored: staging COPY, then insert what is new."""
        await conn.execute(self._stage_sql[table])
        await conn.copy_records_to_table(f"stage_{table}", columns=COLUMNS[table], records=records)
        await conn.execute(self._merge_sql[table])

    def _committed(self, batch: Batch) -> None:
        metrics.batch_committed(batch, time.time())
        self.stats["batches"] += 1
        for table, records in batch.records.items():
            self.stats[f"rows.{table}"] += len(records)
        now = time.time()
        for hook in self.commit_hooks:
            hook(batch, now)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=self.config.connect_timeout_s)
            await use_fast_timestamps(self._conn)
            log.info("writer connected to the database")
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


def _seconds(value: object) -> float:
    """Spill-file encoding of the one type orjson does not know: intervals, as seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot spill {type(value).__name__}")


def _revive(table: str, record: list) -> tuple:
    short = len(COLUMNS[table]) - len(record)
    if 0 < short <= len(_ADDED_COLUMNS.get(table, ())):  # written before the newest columns existed
        record.extend(_ADDED_COLUMNS[table][-short:])
    for i in _DATETIME_COLUMNS[table]:
        if record[i] is not None:
            record[i] = datetime.fromisoformat(record[i])
    for i in _INTERVAL_COLUMNS[table]:
        if record[i] is not None:
            record[i] = timedelta(seconds=record[i])
    return tuple(record)
