"""`tower jobs --once`, `tower events`, the APScheduler service, retention and the heartbeat."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg

from jobs.rules import load_rules
from jobs.service import Jobs, build_scheduler, serve
from jobs.settings import JobsSettings
from tests.support.fixtures import T0, insert_trades
from tests.support.market import quiesce_background_jobs, write_market
from tests.support.scenarios import after, prepare, spread_blowout
from tests.support.webhooks import webhook_receiver
from tower.cli import main


def test_jobs_once_and_events_from_the_command_line(db_dsn, monkeypatch, capsys):
    async def setup():
        conn = await asyncpg.connect(db_dsn)
        try:
            await prepare(conn, 45, spread_blowout)
        finally:
            await conn.close()

    asyncio.run(setup())
    with webhook_receiver() as rx:
        monkeypatch.setenv("TOWER_DSN", db_dsn)
        monkeypatch.setenv("TOWER_ALERT_WEBHOOK_URL", rx.url("/hook"))
        monkeypatch.delenv("TOWER_ALERT_SLACK_URL", raising=False)
        now = after(44).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert main(["jobs", "--once", "--now", now]) == 0
        assert [b["kind"] for b in rx.bodies("/hook")] == ["firing", "resolved"]
        assert main(["jobs", "--once", "--now", now]) == 0  # idempotent: nothing new to send
        assert len(rx.received) == 2

    capsys.readouterr()
    assert main(["events"]) == 0  # closed, and older than the default 24 h
    assert capsys.readouterr().out.strip() == "no risk events"
    assert main(["events", "--since", "1000d"]) == 0  # the scenario is in the past: widen the window
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["id", "state", "severity", "rule", "venue", "symbol"]
    assert lines[2].split()[1:6] == ["resolved", "warning", "spread_blowout", "binance", "BTCUSDT"]
    assert "2026-01-05 12:30:00" in lines[2] and "2026-01-05 12:37:00" in lines[2]
    assert main(["events", "--venue", "hyperliquid", "--since", "1000d"]) == 0
    assert capsys.readouterr().out.strip() == "no risk events"


def test_jobs_command_rejects_now_without_once(monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["jobs", "--now", "2026-01-05T12:00:00Z"]) == 2
    assert "--now only makes sense with --once" in capsys.readouterr().err


async def test_retention_job_drops_old_chunks_under_apache_and_records_its_run(conn, db_dsn, license):
    await quiesce_background_jobs(conn)  # TSL's own retention job must not win the race
    old = datetime.now(UTC) - timedelta(days=60)  # raw_trades keep 30 days by default
    await insert_trades(conn, [("binance", "BTCUSDT", old, old, "1", 100.0, 1.0, "buy")])
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        await Jobs(pool=pool, rules=load_rules(), settings=JobsSettings(), started_at=T0).housekeeping()
    finally:
        await pool.close()
    run = await conn.fetchrow("SELECT ok, detail FROM ops.job_runs WHERE job = 'retention'")
    detail = json.loads(run["detail"])
    assert run["ok"] and detail["license"] == license
    left = await conn.fetchval("SELECT count(*) FROM ops.raw_trades")
    if license == "apache":
        assert left == 0 and detail["chunks_dropped"]["ops.raw_trades"] == 1
    else:  # TimescaleDB's own retention jobs do this under TSL; the function steps aside
        assert left == 1 and detail["chunks_dropped"] == {}


async def test_service_schedules_the_jobs_catches_up_and_beats(conn, db_dsn):
    # Data in the last few minutes of wall-clock time, so the service's own catch-up has work to do.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    await write_market(conn, 4, start=start)
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=4)
    stop = asyncio.Event()
    try:
        jobs = Jobs(pool=pool, rules=load_rules(), settings=JobsSettings(jobs_settle_s=0), started_at=start)
        scheduler = build_scheduler(jobs)
        assert {j.id for j in scheduler.get_jobs()} == {"risk", "deliver", "heartbeat", "retention"}

        ran = {"risk": asyncio.Event(), "heartbeat": asyncio.Event()}

        def noting(name, job):
            async def wrapped():
                result = await job()
                ran[name].set()
                return result

            return wrapped

        jobs.risk, jobs.heartbeat = noting("risk", jobs.risk), noting("heartbeat", jobs.heartbeat)

        async def stop_when_done():
            await ran["risk"].wait()
            await ran["heartbeat"].wait()
            stop.set()

        # The timeout only guards against a hang; nothing here depends on how long a run takes.
        await asyncio.wait_for(asyncio.gather(serve(jobs, stop), stop_when_done()), timeout=60)
    finally:
        await pool.close()
    beat = json.loads(await conn.fetchval("SELECT detail FROM ops.job_runs WHERE job = 'heartbeat'"))
    assert {"host", "pid", "risk_evaluated_through", "alerts_queued"} <= set(beat)
    scored = await conn.fetchval("SELECT count(DISTINCT bucket) FROM ops.risk_scores")
    assert scored >= 4
