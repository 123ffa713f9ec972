"""Sending queued notifications (ops.alert_outbox) to the configured sinks, recording every attempt.

Sinks: `webhook` posts the generic JSON payload; `slack` posts {"text": ...} (Slack incoming-webhook
compatible). Each attempt has a bounded timeout; failures are retried with exponential backoff and
recorded in ops.alert_deliveries. A sink that keeps failing gives up on its oldest notification and
leaves the rest queued for the next run, so one dead sink neither blocks the others nor scoring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg
import httpx
import orjson

from jobs import prometheus

log = logging.getLogger("tower.jobs.notify")


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


def body_for(sink: str, payload: dict) -> dict:
    if sink == "slack":
        return {"text": payload["text"]}
    return payload


async def deliver_queued(
    pool: asyncpg.Pool, sinks: dict[str, str], policy: DeliveryPolicy, client: httpx.AsyncClient | None = None
) -> DeliveryReport:
    """Send every queued notification, sinks in parallel, each sink's queue in order."""
    report = DeliveryReport()
    rows = await pool.fetch(
        "SELECT id, event_id, sink, kind, payload, attempts FROM ops.alert_outbox WHERE status = 'queued' ORDER BY id"
    )
    queues: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        queues.setdefault(r["sink"], []).append(r)
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout_s)
    try:
        await asyncio.gather(
            *(_drain(pool, client, sink, sinks.get(sink), queue, policy, report) for sink, queue in queues.items())
        )
    finally:
        if own:
            await client.aclose()
    return report


async def _drain(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    sink: str,
    url: str | None,
    queue: list[asyncpg.Record],
    policy: DeliveryPolicy,
    report: DeliveryReport,
) -> None:
    for i, row in enumerate(queue):
        if url is None:
            await _finish(pool, row["id"], "failed", row["attempts"])
            await _record(
                pool, row, sink, row["attempts"] + 1, "failed", None, f"sink {sink} is not configured any more", None
            )
            report.failed += 1
            continue
        ok = await _send(pool, client, sink, url, row, policy, report)
        if not ok:
            report.left_queued += len(queue) - i - 1
            report.by_sink[sink] = "failing"
            log.warning("sink %s failing; %d notification(s) left queued for the next run", sink, len(queue) - i - 1)
            return
    report.by_sink.setdefault(sink, "ok")


async def _send(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    sink: str,
    url: str,
    row: asyncpg.Record,
    policy: DeliveryPolicy,
    report: DeliveryReport,
) -> bool:
    payload = orjson.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    content = orjson.dumps(body_for(sink, payload))
    attempt = row["attempts"]
    for n in range(policy.max_attempts):
        attempt += 1
        started = time.perf_counter()
        status, error = None, None
        try:
            resp = await client.post(
                url, content=content, headers={"content-type": "application/json"}, timeout=policy.timeout_s
            )
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {resp.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        report.attempts += 1
        last = n == policy.max_attempts - 1
        outcome = "sent" if error is None else ("failed" if last else "retrying")
        await _record(pool, row, sink, attempt, outcome, status, error, elapsed_ms)
        if error is None:
            await _finish(pool, row["id"], "sent", attempt)
            report.sent += 1
            return True
        log.warning("alert %s to %s attempt %d failed: %s", row["kind"], sink, attempt, error)
        if not last:
            await asyncio.sleep(policy.backoff_s * 2**n)
    await _finish(pool, row["id"], "failed", attempt)
    report.failed += 1
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
