"""Sending queued notifications (ops.alert_outbox) to the configured sinks, recording every attempt.

Each sink type's payload format is its own module in jobs/sinks/. Queued rows of one sink, kind and
notification group (ops.alert_outbox.group_key) whose data times lie within `group_interval` of the
first go out as one request, for sinks that group (PagerDuty alerts are per event). Each attempt
has a bounded timeout; failures are retried with exponential backoff and recorded in
ops.alert_deliveries (one row per notification of a group). A sink that keeps failing gives up on
its oldest notification and leaves the rest queued for the next run, so one dead sink neither blocks
the others nor scoring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType

import asyncpg
import httpx
import orjson

from jobs import prometheus
from jobs.sinks import SINKS

log = logging.getLogger("tower.jobs.notify")
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_s: float = 5.0
    max_attempts: int = 4
    backoff_s: float = 1.0  # before attempt 2; doubles each further attempt


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    attempts: int = 0
    left_queued: int = 0
    skipped: str | None = None
    by_sink: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Grouping:
    wait: timedelta = timedelta(0)  # wall time a fresh row waits for others of its group
    interval: timedelta = timedelta(minutes=1)  # data-time span of one grouped notification


QUEUED_SQL = """
SELECT id, event_id, sink, kind, payload, attempts, data_time, group_key, created_at < now() - $1::interval AS ripe
FROM ops.alert_outbox WHERE status = 'queued' ORDER BY id
"""


def batches(rows: list[asyncpg.Record], grouping: Grouping, groups: bool) -> list[list[asyncpg.Record]]:
    """A sink's queued rows as the notifications to send, in the order of each one's first row.

    A batch whose newest row is younger than group_wait is left for the next run (it may still grow).
    """
    out: list[list[asyncpg.Record]] = []
    open_batches: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for r in rows:
        key = (r["kind"], r["group_key"])
        batch = open_batches.get(key) if groups and r["group_key"] is not None else None
        if batch is not None and r["data_time"] - batch[0]["data_time"] < max(grouping.interval, MINUTE):
            batch.append(r)
            continue
        batch = [r]
        out.append(batch)
        open_batches[key] = batch
    if grouping.wait:
        ready = []
        for batch in out:
            if not all(r["ripe"] for r in batch):
                break  # keep the sink's order: later batches wait too
            ready.append(batch)
        return ready
    return out


async def deliver_queued(
    pool: asyncpg.Pool,
    sinks: dict[str, str],
    policy: DeliveryPolicy,
    client: httpx.AsyncClient | None = None,
    secrets: dict[str, str] | None = None,
    grouping: Grouping = Grouping(),
) -> DeliveryReport:
    """Send every queued notification, sinks in parallel, each sink's queue in order."""
    report = DeliveryReport()
    rows = await pool.fetch(QUEUED_SQL, grouping.wait)
    queues: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        queues.setdefault(r["sink"], []).append(r)
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout_s)
    secrets = secrets or {}
    try:
        await asyncio.gather(
            *(
                _drain(pool, client, Target(sink, sinks.get(sink), secrets.get(sink)), queue, policy, grouping, report)
                for sink, queue in queues.items()
            )
        )
    finally:
        if own:
            await client.aclose()
    return report


@dataclass(frozen=True)
class Target:
    sink: str
    url: str | None
    secret: str | None = None


async def _drain(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    target: Target,
    queue: list[asyncpg.Record],
    policy: DeliveryPolicy,
    grouping: Grouping,
    report: DeliveryReport,
) -> None:
    sink = target.sink
    module = SINKS.get(sink)
    todo = batches(queue, grouping, groups=module is not None and module.GROUPS)
    for i, batch in enumerate(todo):
        if target.url is None or module is None:
            for row in batch:
                await _finish(pool, row["id"], "failed", row["attempts"])
                await _record(
                    pool,
                    row,
                    sink,
                    row["attempts"] + 1,
                    "failed",
                    None,
                    f"sink {sink} is not configured any more",
                    None,
                )
                report.failed += 1
            continue
        ok = await _send(pool, client, target, module, batch, policy, report)
        if not ok:
            left = sum(len(b) for b in todo[i + 1 :])
            report.left_queued += left
            report.by_sink[sink] = "failing"
            log.warning("sink %s failing; %d notification(s) left queued for the next run", sink, left)
            return
    report.by_sink.setdefault(sink, "ok")


async def _send(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    target: Target,
    module: ModuleType,
    batch: list[asyncpg.Record],
    policy: DeliveryPolicy,
    report: DeliveryReport,
) -> bool:
    payloads = [orjson.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in batch]
    contents = [orjson.dumps(body) for body in module.render(payloads, target.secret)]
    first = batch[0]
    attempt = first["attempts"]
    for n in range(policy.max_attempts):
        attempt += 1
        started = time.perf_counter()
        status, error = None, None
        try:
            for content in contents:
                resp = await client.post(
                    target.url, content=content, headers={"content-type": "application/json"}, timeout=policy.timeout_s
                )
                status = resp.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}: {resp.text[:200]}"
                    break
        except httpx.HTTPError as exc:
            error = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        report.attempts += 1
        last = n == policy.max_attempts - 1
        outcome = "sent" if error is None else ("failed" if last else "retrying")
        for row in batch:
            await _record(pool, row, target.sink, attempt, outcome, status, error, elapsed_ms)
        if error is None:
            for row in batch:
                await _finish(pool, row["id"], "sent", attempt)
            report.sent += len(batch)
            return True
        log.warning("alert %s to %s attempt %d failed: %s", first["kind"], target.sink, attempt, error)
        if not last:
            await asyncio.sleep(policy.backoff_s * 2**n)
    for row in batch:
        await _finish(pool, row["id"], "failed", attempt)
    report.failed += len(batch)
    return False


async def _record(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    sink: str,
    attempt: int,
    status: str,
    http_status: int | None,
    error: str | None,
    duration_ms: float | None,
) -> None:
    prometheus.ALERT_ATTEMPTS.labels(sink, row["kind"], status).inc()
    await pool.execute(
        "INSERT INTO ops.alert_deliveries (event_id, sink, kind, attempt, status, http_status, error, outbox_id, "
        "duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        row["event_id"],
        sink,
        row["kind"],
        attempt,
        status,
        http_status,
        error,
        row["id"],
        duration_ms,
    )


async def _finish(pool: asyncpg.Pool, outbox_id: int, status: str, attempts: int) -> None:
    await pool.execute(
        "UPDATE ops.alert_outbox SET status = $2, attempts = $3, done_at = now() WHERE id = $1",
        outbox_id,
        status,
        attempts,
    )
