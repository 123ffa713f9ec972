"""`tower jobs` (risk scoring, alert evaluation, delivery, retention, heartbeat) and `tower events`."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from jobs import backtest_cli, silence_cli
from jobs.rules import load_rules
from jobs.service import Jobs, run_once, serve
from jobs.settings import JobsSettings
from tower.durations import parse_duration
from tower.metrics import serve as serve_metrics
from tower.settings import DatabaseSettings, MetricsSettings, load
from tower.table import render

log = logging.getLogger("tower.jobs")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="run the jobs service: risk scoring, risk events, alerts, retention, heartbeat")
    p.add_argument("--once", action="store_true", help="run every job once (catch-up included) and exit")
    p.add_argument("--rules", help="rules file merged over the defaults (default: $TOWER_RULES_FILE)")
    p.add_argument("--catchup", type=_duration, help="how far back to score unscored minutes (default 2h)")
    p.add_argument(
        "--now",
        type=_timestamp,
        help="with --once: treat this UTC time as now (replay a past period), e.g. 2026-01-05T13:00:00Z",
    )
    p.add_argument("--check-rules", action="store_true", help="validate the rules file, print the rules, exit")
    p.set_defaults(run=run_jobs)

    p = sub.add_parser("events", help="list open and recent risk events")
    p.add_argument(
        "--since",
        type=_duration,
        default=timedelta(hours=24),
        help="also list closed events opened within this long (default 24h)",
    )
    p.add_argument("--venue")
    p.add_argument("--rule")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(run=run_events)
    silence_cli.register_ack(p)
    silence_cli.register(sub, _duration, _timestamp)
    backtest_cli.register(sub, _duration, _timestamp)


def _duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value is None:
        raise argparse.ArgumentTypeError("a duration is required here, not 'off'")
    return value


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad time {text!r}: use ISO 8601, e.g. 2026-01-05T13:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def run_jobs(args: argparse.Namespace) -> int:
    overrides = {"jobs_catchup": args.catchup} if args.catchup else {}
    settings = load(JobsSettings, **overrides)
    rules = load_rules(args.rules or settings.rules_file)
    if args.check_rules:
        print(
            render(
                ["rule", "scope", "metric", "info", "warning", "critical", "for", "clear", "inhibited by"],
                [
                    [
                        n,
                        r.scope,
                        r.metric,
                        r.info,
                        r.warning,
                        r.critical,
                        f"{r.for_minutes}m",
                        f"{r.clear_minutes}m",
                        ",".join(r.inhibited_by),
                    ]
                    for n, r in rules.rules.items()
                    if r.enabled
                ],
            )
        )
        return 0
    if args.now and not args.once:
        raise ValueError("--now only makes sense with --once")
    if not settings.sinks():
        log.warning(
            "no alert sinks configured (TOWER_ALERT_WEBHOOK_URL, TOWER_ALERT_SLACK_URL): "
            "events are recorded but no notification is sent"
        )
    dsn = load(DatabaseSettings).dsn
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=6)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot connect to the database: {exc}") from exc
    try:
        jobs = Jobs(pool=pool, rules=rules, settings=settings, started_at=datetime.now(UTC), now=args.now)
        if args.once:
            return await run_once(jobs)
        serve_metrics(load(MetricsSettings).metrics_port)
        return await serve(jobs)
    finally:
        await pool.close()


EVENTS_SQL = """
SELECT id, state, severity, rule, venue, symbol, opened_at, fired_at, resolved_at, last_seen, peak_value,
       inhibited_by, message, silenced_by, acked_by
FROM ops.risk_events
WHERE ($1::text IS NULL OR venue = $1) AND ($2::text IS NULL OR rule = $2)
  AND (state IN ('pending', 'firing')
       OR opened_at >= now() - $3::interval)
ORDER BY state IN ('pending', 'firing') DESC, opened_at DESC, id DESC
LIMIT $4
"""


async def run_events(args: argparse.Namespace) -> int:
    from tower.db import connect

    conn = await connect()
    try:
        rows = await conn.fetch(EVENTS_SQL, args.venue, args.rule, args.since, args.limit)
    finally:
        await conn.close()
    if not rows:
        print("no risk events")
        return 0
    print(
        render(
            [
                "id",
                "state",
                "severity",
                "rule",
                "venue",
                "symbol",
                "opened",
                "fired",
                "resolved",
                "last seen",
                "peak",
                "inhibited by",
                "silenced by",
                "acked by",
            ],
            [
                [
                    r["id"],
                    r["state"],
                    r["severity"],
                    r["rule"],
                    r["venue"],
                    r["symbol"],
                    r["opened_at"],
                    r["fired_at"],
                    r["resolved_at"],
                    r["last_seen"],
                    r["peak_value"],
                    r["inhibited_by"],
                    r["silenced_by"],
                    r["acked_by"],
                ]
                for r in rows
            ],
        )
    )
    return 0
