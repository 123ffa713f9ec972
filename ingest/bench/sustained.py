"""The sustained-capacity search of `tower bench ingest`: when a paced step passes, and which rates to try.

Pure functions only (no database, no clock), so the judgement and the search are tested on given figures.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MIN_STEP_S = 20.0  # the shortest step that may count as sustained; shorter steps are smoke tests
P99_LIMIT_MS = 1000.0
# A step must deliver (receive and commit) this share of the frames it was sent: a connector that reads
# slower than the feed lags in the socket buffer, where receive -> commit latency cannot see it.
DELIVERED_SHARE = 0.99


@dataclass
class StepFigures:
    """What one paced step measured, for one ingest worker."""

    rate: float  # frames per second this worker was sent
    sent: int  # frames the flood server was asked to send
    committed: int  # rows committed
    spilled_rows: int
    queue_depths: list[int]  # writer backlog in rows, sampled at a fixed interval while flooding
    latencies_ms: list[float]  # receive -> commit, sampled
    batch_rows: int  # the writer's batch size: the queue's slack (see queue_grew)
    paused_s: float = 0.0  # time readers waited for room in the writer (its memory full: TCP backpressure)


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed; empty when it passed
    p99_ms: float = math.nan


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def queue_grew(depths: list[int], slack_rows: int) -> tuple[bool, float, float]:
    """Whether the backlog's last-third mean is above its first-third mean by more than slack_rows.

    A writer that keeps up holds at most about a batch being filled plus one being committed, so its
    backlog saws between 0 and roughly one batch; one batch of slack absorbs that sawtooth, while a
    writer falling behind adds a batch every few hundred milliseconds and exceeds it within a step."""
    if not depths:
        return False, 0.0, 0.0
    third = max(1, len(depths) // 3)
    first, last = statistics.fmean(depths[:third]), statistics.fmean(depths[-third:])
    return last > first + slack_rows, first, last


def judge_step(step: StepFigures) -> Verdict:
    reasons = []
    if step.spilled_rows:
        reasons.append(f"{step.spilled_rows:,} rows spilled")
    if step.paused_s:
        reasons.append(f"readers paused {step.paused_s:.1f} s (writer memory full)")
    grew, first, last = queue_grew(step.queue_depths, step.batch_rows)
    if grew:
        reasons.append(f"writer queue grew from {first:,.0f} to {last:,.0f} rows")
    p99 = percentile(step.latencies_ms, 99)
    if not step.latencies_ms:
        reasons.append("no commits were measured")
    elif p99 > P99_LIMIT_MS:
        reasons.append(f"p99 receive -> commit {p99:,.0f} ms > {P99_LIMIT_MS:,.0f} ms")
    if step.committed < DELIVERED_SHARE * step.sent:
        reasons.append(f"only {step.committed:,} of {step.sent:,} frames delivered in time")
    return Verdict(not reasons, reasons, p99)


def judge_workers(steps: list[StepFigures]) -> Verdict:
    """A step with N workers passes if every worker passes; its p99 is the worst worker's."""
    verdicts = [judge_step(s) for s in steps]
    reasons = [f"worker {i}: {r}" if len(steps) > 1 else r for i, v in enumerate(verdicts) for r in v.reasons]
    p99s = [v.p99_ms for v in verdicts if not math.isnan(v.p99_ms)]
    return Verdict(all(v.passed for v in verdicts), reasons, max(p99s) if p99s else math.nan)


async def search(
    start: float, max_rate: float, precision: float, try_rate: Callable[[float], Awaitable[Verdict]]
) -> tuple[float, Verdict | None]:
    """The highest passing rate: double from start until a step fails (or max_rate passes), then bisect
    between the last pass and the first fail until they are within precision (a fraction) of each other.
    Returns (0, None) when even start fails."""
    passed, passed_verdict, failed = 0.0, None, None
    rate = min(start, max_rate)
    while failed is None:
        verdict = await try_rate(rate)
        if not verdict.passed:
            failed = rate
        else:
            passed, passed_verdict = rate, verdict
            if rate >= max_rate:
                return passed, passed_verdict
            rate = min(rate * 2, max_rate)
    while passed and failed - passed > precision * passed:
        rate = round((passed + failed) / 2)
        verdict = await try_rate(rate)
        if verdict.passed:
            passed, passed_verdict = rate, verdict
        else:
            failed = rate
    return passed, passed_verdict
