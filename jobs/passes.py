"""One pass of each job: risk (catch-up, score, evaluate), deliver, heartbeat, housekeeping.

Every pass takes `now` as an argument so tests and replays are deterministic; the service passes
the wall clock.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson

from jobs import notify, pipeline
from jobs.evaluate import CURSOR, Links, evaluate_minute
from jobs.rules import RuleSet
from jobs.scoring import score_minutes
from jobs.settings import JobsSettings

log = logging.getLogger("tower.jobs")
MINUTE = timedelta(minutes=1)
CHUNK = timedelta(hours=1)  # minutes scored per SQL call during catch-up
_PASS_LOCK = 0x7269736B  # advisory locks: one risk pass / one delivery run at a time per database
_DELIVER_LOCK = 0x72697374


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def last_closed_minute(now: datetime, settle_s: float) -> datetime:
    """The newest minute whose bucket ended at least `settle_s` ago (late rows have had time to land)."""
    return floor_minute(now - timedelta(seconds=settle_s)) - MINUTE


@dataclass
class RiskReport:
    first: datetime | None = None
    last: datetime | None = None
    minutes: int = 0
    scores: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    skipped: str | None = None

    def as_detail(self) -> dict:
        return {
            "first": self.first,
            "last": self.last,
            "minutes": self.minutes,
            "scores": self.scores,
            "transitions": self.transitions,
            "notifications": self.notifications,
            "skipped": self.skipped,
        }


async def first_data_minute(conn: asyncpg.Connection, start: datetime, end: datetime) -> datetime | None:
    """The first minute in [start, end) with market data. Raw tables, not the features: under Apache
    those are views that would aggregate the window."""
    return await conn.fetchval(
        "SELECT date_trunc('minute', least((SELECT min(ts) FROM ops.raw_book_l1 WHERE ts >= $1 AND ts < $2), "
        "(SELECT min(ts) FROM ops.raw_trades WHERE ts >= $1 AND ts < $2)))",
        start,
        end,
    )


async def plan(conn: asyncpg.Connection, now: datetime, settings: JobsSettings) -> tuple[datetime | None, datetime]:
    """(first minute to evaluate or None, last closed minute)."""
    last = last_closed_minute(now, settings.jobs_settle_s)
    window_start = floor_minute(now) - settings.jobs_catchup
    cursor = await conn.fetchval("SELECT position FROM ops.job_cursors WHERE name = $1", CURSOR)
    if cursor is None:
        # First run: start where data starts, so the empty past does not read as "every feed down".
        return await first_data_minute(conn, window_start, last + MINUTE), last
    if cursor + MINUTE < window_start:
        log.warning(
            "risk: minutes %s .. %s are older than the catch-up window (%s) and stay unscored",
            cursor + MINUTE,
            window_start - MINUTE,
            settings.jobs_catchup,
        )
    return max(cursor + MINUTE, window_start), last


async def risk_pass(pool: asyncpg.Pool, rules: RuleSet, settings: JobsSettings, now: datetime) -> RiskReport:
    """Score and evaluate every closed minute after the cursor (within the catch-up window), in order."""
    report = RiskReport()
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _PASS_LOCK):
            report.skipped = "another risk pass is running"
            return report
        try:
            first, last = await plan(conn, now, settings)
            if first is None or first > last:
                report.skipped = "no closed minute to score"
                return report
            report.first, report.last = first, last
            transitions: dict[str, int] = {}
            sinks = list(settings.sinks())
            links = Links(settings.metabase_public_url)
            chunk_start = first
            while chunk_start <= last:
                chunk_end = min(chunk_start + CHUNK, last + MINUTE)
                scores = await score_minutes(conn, chunk_start, chunk_end, rules.scoring)
                report.scores += len(scores)
                minute = chunk_start
                while minute < chunk_end:
                    async with conn.transaction():
                        newest = minute == last
                        failures = await pipeline.job_failures(conn, now) if newest else None
                        m = await evaluate_minute(conn, minute, rules, sinks, links, failures)
                    for state, n in m.transitions.items():
                        transitions[state] = transitions.get(state, 0) + n
                    report.notifications += m.notifications
                    report.minutes += 1
                    minute += MINUTE
                chunk_start = chunk_end
            report.transitions = transitions
            return report
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _PASS_LOCK)


async def deliver_pass(
    pool: asyncpg.Pool, settings: JobsSettings, rules: RuleSet | None = None
) -> notify.DeliveryReport:
    """Send queued notifications; a second service on the same database waits its turn (nothing sent twice)."""
    policy = notify.DeliveryPolicy(
        timeout_s=settings.alert_timeout_s, max_attempts=settings.alert_max_attempts, backoff_s=settings.alert_backoff_s
    )
    async with pool.acquire() as lock:
        if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", _DELIVER_LOCK):
            return notify.DeliveryReport(skipped="another delivery run is in progress")
        try:
            grouping = notify.Grouping()
            if rules is not None:
                grouping = notify.Grouping(rules.notify.group_wait, rules.notify.group_interval)
            return await notify.deliver_queued(
                pool, settings.sinks(), policy, secrets=settings.sink_secrets(), grouping=grouping
            )
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", _DELIVER_LOCK)


async def heartbeat(pool: asyncpg.Pool, started_at: datetime) -> dict:
    """What a dashboard needs to tell a live service from a dead one (row in ops.job_runs, job='heartbeat')."""
    cursor = await pool.fetchval("SELECT position FROM ops.job_cursors WHERE name = $1", CURSOR)
    queued = await pool.fetchval("SELECT count(*) FROM ops.alert_outbox WHERE status = 'queued'")
    detail = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "service_started_at": started_at,
        "risk_evaluated_through": cursor,
        "alerts_queued": queued,
    }
    await pool.execute(
        "INSERT INTO ops.job_runs (job, started_at, finished_at, ok, detail) "
        "VALUES ('heartbeat', now(), now(), true, $1::jsonb)",
        orjson.dumps(detail, default=str).decode(),
    )
    return detail


async def housekeeping(pool: asyncpg.Pool, settings: JobsSettings) -> dict:
    """Retention: drop_chunks per ops.policy_settings under Apache (a no-op under TSL, whose jobs do it),
    and old ops.job_runs rows under both."""
    license = await pool.fetchval("SELECT current_setting('timescaledb.license', true)")
    dropped = await pool.fetch("SELECT * FROM ops.enforce_retention()")
    pruned = await pool.fetchval(
        "WITH gone AS (DELETE FROM ops.job_runs WHERE started_at < now() - $1::interval RETURNING 1) "
        "SELECT count(*) FROM gone",
        settings.jobs_runs_keep,
    )
    heartbeats = await pool.fetchval(
        "WITH gone AS (DELETE FROM ops.ingest_heartbeats WHERE ts < now() - $1::interval RETURNING 1) "
        "SELECT count(*) FROM gone",
        settings.jobs_runs_keep,
    )
    return {
        "license": license,
        "chunks_dropped": {r["relation"]: r["chunks_dropped"] for r in dropped},
        "job_runs_pruned": pruned,
        "ingest_heartbeats_pruned": heartbeats,
    }


async def ping(url: str, timeout_s: float) -> bool:
    """One dead-man's-switch request; a failure is logged, never raised (the monitor will notice)."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.get(url)
        if resp.status_code < 300:
            return True
        log.warning("heartbeat URL answered HTTP %d", resp.status_code)
    except httpx.HTTPError as exc:
        log.warning("heartbeat URL not reached: %s", exc.__class__.__name__)
    return False


def utcnow() -> datetime:
    return datetime.now(UTC)
