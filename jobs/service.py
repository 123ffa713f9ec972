"""`tower jobs`: the APScheduler (3.x, asyncio) service, and `--once`, a single pass of every job."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs import passes
from jobs.rules import RuleSet
from jobs.runs import recorded
from jobs.settings import JobsSettings

log = logging.getLogger("tower.jobs")


@dataclass
class Jobs:
    """The jobs bound to one pool, rules and settings; each run is recorded in ops.job_runs."""

    pool: asyncpg.Pool
    rules: RuleSet
    settings: JobsSettings
    started_at: datetime
    now: datetime | None = None  # fixed data clock for --once/--now (replays, tests); None = wall clock

    def clock(self) -> datetime:
        return self.now or passes.utcnow()

    async def risk(self) -> passes.RiskReport:
        async with recorded(self.pool, "risk") as run:
            report = await passes.risk_pass(self.pool, self.rules, self.settings, self.clock())
            run.detail = report.as_detail()
        if report.minutes:
            log.info(
                "risk: scored and evaluated %d minute(s) %s .. %s; transitions %s; %d notification(s) queued",
                report.minutes,
                report.first,
                report.last,
                report.transitions or "none",
                report.notifications,
            )
        return report

    async def deliver(self) -> None:
        async with recorded(self.pool, "deliver") as run:
            report = await passes.deliver_pass(self.pool, self.settings, self.rules)
            run.detail = report.__dict__
        if report.attempts:
            log.info(
                "deliver: %d sent, %d failed, %d attempts, %d left queued",
                report.sent,
                report.failed,
                report.attempts,
                report.left_queued,
            )

    async def heartbeat(self) -> None:
        await passes.heartbeat(self.pool, self.started_at)

    async def deadman(self) -> None:
        """Request TOWER_HEARTBEAT_URL: an external monitor alerts when these requests stop."""
        if self.settings.heartbeat_url:
            await passes.ping(self.settings.heartbeat_url, self.settings.alert_timeout_s)

    async def housekeeping(self) -> None:
        async with recorded(self.pool, "retention") as run:
            run.detail = await passes.housekeeping(self.pool, self.settings)


async def run_once(jobs: Jobs) -> int:
    """Every job once, in order; 0 if all succeeded."""
    failed = 0
    await jobs.heartbeat()
    for job in (jobs.risk, jobs.deliver, jobs.housekeeping):
        try:
            await job()
        except Exception:  # recorded in ops.job_runs by `recorded`; the other jobs still run
            failed += 1
    return 1 if failed else 0


def build_scheduler(jobs: Jobs) -> AsyncIOScheduler:
    s = jobs.settings
    scheduler = AsyncIOScheduler(timezone="UTC")
    now = passes.utcnow()

    async def risk_then_deliver() -> None:
        report = await jobs.risk()
        if report.notifications:
            scheduler.get_job("deliver").modify(next_run_time=passes.utcnow())

    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 60}
    # A few seconds after each minute closes; the first run (now) is the catch-up.
    scheduler.add_job(
        risk_then_deliver,
        CronTrigger(second=int(s.jobs_settle_s) % 60, timezone="UTC"),
        id="risk",
        name="risk",
        next_run_time=now,
        **common,
    )
    scheduler.add_job(
        jobs.deliver, IntervalTrigger(seconds=15), id="deliver", name="deliver", next_run_time=now, **common
    )
    scheduler.add_job(
        jobs.heartbeat,
        IntervalTrigger(seconds=s.jobs_heartbeat_s),
        id="heartbeat",
        name="heartbeat",
        next_run_time=now,
        **common,
    )
    if s.heartbeat_url:
        scheduler.add_job(
            jobs.deadman, IntervalTrigger(seconds=60), id="deadman", name="deadman", next_run_time=now, **common
        )
    scheduler.add_job(
        jobs.housekeeping,
        IntervalTrigger(seconds=s.jobs_retention_every.total_seconds()),
        id="retention",
        name="retention",
        next_run_time=now,
        **common,
    )
    return scheduler


async def serve(jobs: Jobs, stop: asyncio.Event | None = None) -> int:
    """Run the scheduler until SIGINT/SIGTERM (or `stop` is set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if not log.isEnabledFor(logging.DEBUG):
        # APScheduler logs every run at INFO; ops.job_runs has them, and failures still show as errors.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = build_scheduler(jobs)
    scheduler.start()
    log.info("jobs service started: %s", ", ".join(f"{j.id} ({j.trigger})" for j in scheduler.get_jobs()))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        log.info("jobs service stopped")
    return 0
