"""Recording job runs in ops.job_runs: one row per run, with outcome and a detail document."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from jobs import prometheus

log = logging.getLogger("tower.jobs")


class Run:
    def __init__(self) -> None:
        self.detail: dict = {}


@asynccontextmanager
async def recorded(pool: asyncpg.Pool, job: str) -> AsyncIterator[Run]:
    """Insert the run on entry, set finished_at/ok/error/detail on exit; the error is re-raised."""
    run_id = await pool.fetchval("INSERT INTO ops.job_runs (job) VALUES ($1) RETURNING id", job)
    run = Run()
    started = time.perf_counter()
    try:
        yield run
    except Exception as exc:
        prometheus.RUN_SECONDS.labels(job).observe(time.perf_counter() - started)
        prometheus.RUN_FAILURES.labels(job).inc()
        log.error("job %s failed: %s", job, exc)
        log.debug("%s", traceback.format_exc())
        await _close(pool, run_id, False, f"{exc.__class__.__name__}: {exc}", run.detail)
        raise
    prometheus.RUN_SECONDS.labels(job).observe(time.perf_counter() - started)
    await _close(pool, run_id, True, None, run.detail)


async def _close(pool: asyncpg.Pool, run_id: int, ok: bool, error: str | None, detail: dict) -> None:
    await pool.execute(
        "UPDATE ops.job_runs SET finished_at = now(), ok = $2, error = $3, detail = $4::jsonb WHERE id = $1",
        run_id,
        ok,
        error,
        orjson.dumps(detail, default=str).decode(),
    )
