"""The tower watching itself: metrics of the pipeline that `scope = "pipeline"` rules evaluate.

`job_failed` (1 failing / 0 healthy) per TimescaleDB job of ops (TSL; see jobs/sql/pipeline_jobs.sql)
(its last run failed, or it has not succeeded within 3x its schedule) and for the jobs service's own
retention run (ops.job_runs; what the Apache build runs instead: its last run failed). It is the
state at the pass's wall clock, so only a pass's newest minute evaluates it. `ingest_backlog` (1/0)
per ingest process comes from ops.ingest_heartbeats of the data minute itself.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from jobs.sqlfiles import sql

PIPELINE_VENUE = "tower"  # the venue of pipeline events (their symbol names the job or process)
RETENTION = "retention (jobs service)"

# Only whether the last run failed: after the service itself was down, its retention is overdue by
# design, and the dead-man's switch (TOWER_HEARTBEAT_URL) is what reports that outage.
RETENTION_SQL = (
    "SELECT ok FROM ops.job_runs WHERE job = 'retention' AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1"
)


async def job_failures(conn: asyncpg.Connection, now: datetime) -> dict[str, float]:
    values = {r["name"]: float(r["failing"]) for r in await conn.fetch(sql("pipeline_jobs"), now)}
    last_ok = await conn.fetchval(RETENTION_SQL)
    if last_ok is not None:
        values[RETENTION] = float(not last_ok)
    return values


async def ingest_backlog(conn: asyncpg.Connection, minute: datetime) -> dict[str, float]:
    return {r["name"]: r["backlog"] for r in await conn.fetch(sql("ingest_backlog"), minute)}
