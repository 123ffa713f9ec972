"""An instrument becomes active when its first market data is stored: the writer's commit hook notes the
(venue, symbol) of the first committed trade or book row of each instrument, and a task upserts them into
ops.instruments (active) off the hot path, once per instrument and process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from ingest.venues.base import Venue
from ingest.writer import Batch

log = logging.getLogger("ingest")

ACTIVATE_SQL = (Path(__file__).parent / "sql" / "activate.sql").read_text()
DATA_TABLES = ("raw_trades", "raw_book_l1")  # market data; derivs alone, rejections and gaps do not count
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Activation:
    def __init__(self, dsn: str, venues: list[Venue], retry_cap_s: float = 30.0) -> None:
        self.dsn = dsn
        self.retry_cap_s = retry_cap_s
        self.venues = {v.name: v for v in venues}
        # Still waiting for data; once empty, the commit hook costs nothing.
        self.waiting: set[tuple[str, str]] = {(v.name, s) for v in venues for s in v.symbols}
        self.pending: set[tuple[str, str]] = set()
        self.activated: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()

    def on_commit(self, batch: Batch, committed_at: float) -> None:
        """Writer hook (runs after every commit): notes the instruments this batch delivered first data for.
        Rows are (venue, symbol, ...) tuples in ingest.rows column order."""
        if not self.waiting:
            return
        added = False
        for table in DATA_TABLES:
            for record in batch.records.get(table, ()):
                key = (record[0], record[1])
                if key in self.waiting:
                    self.waiting.discard(key)
                    self.pending.add(key)
                    added = True
                    if not self.waiting:
                        break
        # Only news wakes the task: a wake-up for keys the running flush is already writing would outlive
        # them, and run() would spin on a set event with nothing pending, holding the event loop.
        if added:
            self._wake.set()

    async def run(self) -> None:
        """Writes activations as they come, retrying while the database is away; cancelled at shutdown, after
        which `flush()` writes what the writer's last commits delivered."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush(retry=True)

    async def flush(self, retry: bool = False) -> None:
        delay = 0.5
        while self.pending:
            self._wake.clear()
            keys = sorted(self.pending)
            try:
                await self._write(keys)
            except DB_ERRORS as exc:
                if not retry:
                    log.warning("cannot mark %d instruments active (%s); the next run will", len(keys), exc)
                    return
                log.warning("cannot mark instruments active yet (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_cap_s)
                continue
            self.pending.difference_update(keys)
            self.activated.update(keys)
            log.info("first data stored, active: %s", ", ".join(f"{v} {s}" for v, s in keys))

    async def _write(self, keys: list[tuple[str, str]]) -> None:
        venues = [self.venues[v] for v, _ in keys]
        assets_quotes = [venue.instrument(s) for venue, (_, s) in zip(venues, keys, strict=True)]
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            await conn.execute(
                ACTIVATE_SQL,
                [v for v, _ in keys],
                [s for _, s in keys],
                [a for a, _ in assets_quotes],
                [q for _, q in assets_quotes],
                [venue.contract_size(s) for venue, (_, s) in zip(venues, keys, strict=True)],
            )
        finally:
            await conn.close()
