"""Once a minute, a row in ops.ingest_heartbeats with the writer's backlog (the jobs' ingest_backlog rule)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import asyncpg

from ingest.venues.base import Venue
from ingest.writer import Writer

log = logging.getLogger("tower.ingest")

INSERT_SQL = (
    "INSERT INTO ops.ingest_heartbeats (host, pid, venues, queued_groups, pending_rows, spill_bytes) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)


async def write_heartbeat(dsn: str, venues: list[Venue], writer: Writer) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(
            INSERT_SQL,
            socket.gethostname(),
            os.getpid(),
            [v.name for v in venues],
            writer.queued_groups(),
            writer.pending_rows,
            writer.spill_bytes(),
        )
    finally:
        await conn.close()


async def heartbeat_every(dsn: str, venues: list[Venue], writer: Writer, every_s: float, stop: asyncio.Event) -> None:
    """Never stops ingest: a database that is down is what the spill is for, and the rule will notice."""
    while not stop.is_set():
        try:
            await write_heartbeat(dsn, venues, writer)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("ingest heartbeat not written: %s", exc)
        await asyncio.sleep(every_s)
