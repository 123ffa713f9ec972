"""The one writer: a bounded queue in, batched binary COPY out, nothing lost while the database is away.

Connectors `await put(rows)`. A collector task turns the queue into batches (flush on size or age) and never
waits for the database; a committer task writes batches in order. The overload policy (BENCHMARKS.md), in
order:

1. Overloaded = the backlog (rows queued or batched, not yet committed) above `overload_rows`; it ends
   below half of that. While overloaded, L1 book rows are conflated: of each symbol only the latest per
   `conflate_s` window is stored; how many were not is counted and recorded ('conflating' rows in
   ops.connection_events, one per symbol and report interval).
2. Trades, liquidations, derivatives, gaps, rejections and events are never dropped.
3. The spill file is for a database that is away (the last attempt failed with a connection error), not
   for one that is merely slower than the feed: only then do batches beyond `memory_rows` go to disk, up
   to `spill_max_bytes`.
4. Otherwise (memory full, database slow, or away with the spill budget used up) `put` waits for room:
   the readers stop reading their sockets, TCP backpressure on the venue ('paused' rows, runtime.py).

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
from ingest.conflation import Conflator
from ingest.pgcodecs import use_fast_timestamps
from ingest.rows import COLUMNS, Row, record
from tower.privileges import require

log = logging.getLogger("ingest.writer")

SQL_DIR = Path(__file__).parent / "sql"
# The tables with a dedup index (migrations 0300, 0602, 0810).
DEDUP_TABLES = ("raw_trades", "raw_book_l1", "raw_derivs", "raw_liquidations", "raw_book_depth")
# Columns that hold datetimes or intervals, to rebuild them from the spill file.
_DATETIME_COLUMNS = {
    t: [
        i
        for i, c in enumerate(cols)
        if c in ("ts", "recv_ts", "detected_at", "from_ts", "to_ts", "next_funding_ts", "since")
    ]
    for t, cols in COLUMNS.items()
}
_INTERVAL_COLUMNS = {t: [i for i, c in enumerate(cols) if c == "funding_interval"] for t, cols in COLUMNS.items()}
# Columns added to a row class after spill files existed, with the value older records mean: such a
# record is one or more columns short and is padded (raw_trades.source, migration 0750).
# connection_events.symbol/since/conflated: migration 0805.
_ADDED_COLUMNS: dict[str, tuple[object, ...]] = {"raw_trades": ("ws",), "connection_events": (None, None, None)}
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
    started: float = 0.0  # monotonic time its first row arrived (flush on age)


@dataclass
class WriterConfig:
    batch_rows: int = 5000
    flush_s: float = 0.1  # 0.2 s gave p99 ~290 ms at 20k msgs/s: too little margin
    queue_items: int = 1000  # bound of the queue between connectors and the collector (groups of <= 256 rows)
    memory_rows: int = 500_000  # rows held in memory; beyond, spill (database away) or wait for room
    spill_path: Path = Path(".tower-spill/ingest.jsonl")
    spill_max_bytes: int = 1024 * 2**20  # disk budget of the spill file(s); 0 = never spill
    # Overloaded: more rows than this waiting (queued or batched, not yet committed); ends below half of it.
    overload_rows: int = 20_000
    conflate_s: float = 0.1  # while overloaded, one L1 row per symbol and window
    conflation_report_s: float = 10.0  # one 'conflating' row per symbol and interval this long
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
        self.queued_rows = 0  # rows in the queue, not yet batched
        self.stats: Counter[str] = Counter()
        self.overloaded = False
        self.database_away = False  # the last attempt failed with a connection error: spilling is allowed
        self.conflator = Conflator(
            f"writer:{self.config.spill_path.stem}", self.config.conflate_s, self.config.conflation_report_s
        )
        self._room = asyncio.Event()  # set when has_room(): what a paused put waits for
        self._full = False
        self._admit_all = False  # shutting down: readers hand over what they hold (close() keeps it on disk)
        self._overload_logged = -60.0
        self._spill_full = False  # a batch was refused for the disk budget; cleared when a replay frees space
        self._conn: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._collector: asyncio.Task | None = None
        self._committer: asyncio.Task | None = None
        self._stage_sql = {t: dedup_sql("stage.sql", t) for t in DEDUP_TABLES}
        self._merge_sql = {t: dedup_sql("merge.sql", t) for t in DEDUP_TABLES}

    # -- connectors' side -------------------------------------------------------------------------

    async def put(self, rows: list[Row], wait_for_room: bool = True) -> None:
        """Hands rows over; waits while the writer has no room (step 4 of the policy). Connection events
        pass with wait_for_room=False: the record of a pause must not wait for the pause to end."""
        if not rows:
            return
        if wait_for_room and not self.has_room():
            waited = time.monotonic()
            while not self.has_room():
                self._room.clear()
                await self._room.wait()
            self.stats["paused_puts"] += 1
            self.stats["paused_ms"] += round((time.monotonic() - waited) * 1000)
        self.queued_rows += len(rows)
        await self.queue.put(rows)

    def put_nowait(self, rows: list[Row]) -> bool:
        """Hands rows over if there is room; False (nothing taken) when there is none."""
        if not self.has_room():
            return False
        try:
            self.queue.put_nowait(rows)
        except asyncio.QueueFull:
            return False
        self.queued_rows += len(rows)
        return True

    def backlog_rows(self) -> int:
        """Rows waiting for a commit: queued and batched (a batch still being filled is not counted)."""
        return self.queued_rows + self.pending_rows

    def has_room(self) -> bool:
        """Room for more rows: memory below its bound, or the database away and the spill budget not used up.
        Once full, room comes back only below a low-water mark (a tenth of the bound or a batch less), so a
        reader pauses for a while rather than for every commit."""
        if self._admit_all or (self.database_away and self._spill_has_room()):
            self._full = False
        else:
            cfg, backlog = self.config, self.backlog_rows()
            low_water = max(0, cfg.memory_rows - max(cfg.memory_rows // 10, cfg.batch_rows))
            self._full = backlog > low_water if self._full else backlog >= cfg.memory_rows
        return not self._full

    def room_changed(self) -> None:
        if self.has_room():
            self._room.set()

    def admit_all(self) -> None:
        """At shutdown: no reader waits any more; what they received goes to memory, and close() writes it
        or keeps it in the spill file (past its budget) rather than lose it."""
        self._admit_all = True
        self._room.set()

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
                # the batch cut short may be half stored: replays dedup
                self._spill(self.pending.popleft(), over_budget=True)
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
        batch, closing = Batch(), False
        while True:
            item = await self._next_item(batch)
            if item is not None and not item:  # the empty list close() sends: finish what is queued, then stop
                closing = True
            elif item:
                self.queued_rows -= len(item)
                self._judge_overload(batch)
                _add(batch, self.conflator.take(item) if self.overloaded else item)
            if closing and queue.empty():
                _add(batch, self.conflator.release(final=True))
                self._enqueue(batch)
                return
            if self.conflator.due(time.monotonic()):
                _add(batch, self.conflator.release())
            if batch.rows and (batch.rows >= cfg.batch_rows or time.monotonic() - batch.started >= cfg.flush_s):
                self._enqueue(batch)
                batch = Batch()
                await asyncio.sleep(0)  # a long queue must not keep the committer from the loop

    async def _next_item(self, batch: Batch) -> list[Row] | None:
        """The next group of rows; None when the batch's age or the conflation window is up first."""
        deadlines = [t for t in (self.conflator.deadline(),) if t is not None]
        if batch.rows:
            deadlines.append(batch.started + self.config.flush_s)
        if not deadlines:
            return await self.queue.get()
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            return await asyncio.wait_for(self.queue.get(), max(min(deadlines) - time.monotonic(), 0))
        except TimeoutError:
            return None

    def _judge_overload(self, batch: Batch) -> None:
        backlog = self.backlog_rows()
        if not self.overloaded and backlog > self.config.overload_rows:
            self.overloaded = True
            self.stats["overloads"] += 1
            # Under a feed near capacity overloads come and go: the log says so once a minute.
            if time.monotonic() - self._overload_logged >= 60:
                self._overload_logged = time.monotonic()
                limit = self.config.overload_rows
                log.warning("writer overloaded: %d rows waiting (> %d); conflating L1 book updates", backlog, limit)
        elif self.overloaded and backlog < self.config.overload_rows // 2:
            self.overloaded = False
            _add(batch, self.conflator.release(final=True))

    def _enqueue(self, batch: Batch) -> None:
        if not batch.rows:
            return
        metrics.batch_accepted(batch)
        # Beyond the memory bound a batch goes to disk only while the database is away and the budget
        # allows; otherwise it stays in memory, and put() makes the readers wait (bounded: they stop).
        if self.pending_rows + batch.rows > self.config.memory_rows and self.database_away and self._spill(batch):
            return
        self.pending.append(batch)
        self.pending_rows += batch.rows
        self._wake.set()

    # -- spill file: append-only JSON lines, one batch per line --------------------------------------

    def _spill(self, batch: Batch, over_budget: bool = False) -> bool:
        """Appends the batch to the spill file; False (nothing written) if it would pass the disk budget,
        unless over_budget (shutdown: what is in memory is not thrown away)."""
        used = self.spill_bytes()
        # A full budget refuses before encoding: during an outage every batch comes here, 5000 rows each.
        if not over_budget and used >= self.config.spill_max_bytes:
            return self._refuse_spill()
        line = orjson.dumps({"records": batch.records}, default=_seconds) + b"\n"
        if not over_budget and used + len(line) > self.config.spill_max_bytes:
            return self._refuse_spill()
        with open(self.config.spill_path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.stats["spilled_rows"] += batch.rows
        metrics.SPILLED.inc(batch.rows)
        return True

    def _refuse_spill(self) -> bool:
        if not self.stats["spill_budget_full"]:
            log.warning(
                "spill budget of %.1f MB used up; readers wait for the database (TCP backpressure)",
                self.config.spill_max_bytes / 2**20,
            )
        self.stats["spill_budget_full"] += 1
        self._spill_full = True
        return False

    def _spill_has_room(self) -> bool:
        return not self._spill_full and self.spill_bytes() < self.config.spill_max_bytes

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
                    self.database_away = False
                    if source == "memory":
                        self.pending.popleft()
                        self.pending_rows -= batch.rows
                    self.room_changed()
                if source != "memory":
                    source.unlink()
                    self.stats["replayed_files"] += 1
                    log.info("replayed %d spilled rows from %s", sum(b.rows for b in batches), source)
                    self._spill_full = False
                    self.room_changed()
                delay = self.config.retry_initial_s
            except DB_ERRORS as exc:
                for batch in batches:
                    batch.maybe_stored = True
                self.database_away = True
                self.room_changed()
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


def _add(batch: Batch, rows: list[Row]) -> None:
    if not rows:
        return
    if not batch.rows:
        batch.started = time.monotonic()
    for row in rows:
        batch.records.setdefault(row.table, []).append(record(row))
    batch.rows += len(rows)


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
