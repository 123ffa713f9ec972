"""`tower migrate`, `tower policies show|set`, `tower db-info`."""

from __future__ import annotations

import argparse

from tower import dbinfo, policies
from tower.db import connect, connect_waiting
from tower.durations import parse_duration
from tower.migrate import migrate
from tower.settings import DatabaseSettings, ReadonlySettings, load
from tower.table import human_bytes, render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the ops schema (idempotent)")
    p.add_argument(
        "--wait",
        type=_wait,
        help="retry connecting for this long while the database starts (e.g. 60s; default: try once)",
    )
    p.set_defaults(run=run_migrate)

    p = sub.add_parser("policies", help="show or tune retention, compression and refresh policies")
    psub = p.add_subparsers(dest="policies_command", required=True)
    show = psub.add_parser("show", help="list policy settings and the jobs that enforce them")
    show.set_defaults(run=run_policies_show)
    st = psub.add_parser("set", help="change one relation's policies, e.g. `set raw_trades --retention 14d`")
    st.add_argument("relation", help="e.g. raw_trades, ops.raw_book_l1, book_1m")
    st.add_argument("--retention", type=_duration, help="drop data older than this (e.g. 30d, or off)")
    st.add_argument("--compress-after", type=_duration, help="compress chunks older than this (e.g. 2h, or off)")
    st.add_argument("--refresh-every", type=_duration, help="continuous aggregates: refresh schedule (e.g. 1m)")
    st.add_argument(
        "--refresh-start-offset",
        type=_duration,
        help="continuous aggregates: how far back each refresh looks (max lateness, e.g. 2h)",
    )
    st.add_argument(
        "--refresh-end-offset",
        type=_duration,
        help="continuous aggregates: newest data left to real-time aggregation (e.g. 1m)",
    )
    st.set_defaults(run=run_policies_set)

    p = sub.add_parser("db-info", help="server, TimescaleDB version and license, hypertables, jobs")
    p.set_defaults(run=run_db_info)


def _duration(text: str):
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wait(text: str):
    value = _duration(text)
    if value is None:
        raise argparse.ArgumentTypeError("--wait needs a duration such as 60s (omit it to try once)")
    return value


async def run_migrate(args: argparse.Namespace) -> int:
    settings = load(DatabaseSettings)
    limits = load(ReadonlySettings)
    conn = await (connect_waiting(settings.dsn, args.wait) if args.wait else connect(settings.dsn))
    try:
        await migrate(
            conn,
            readonly_password=settings.readonly_password,
            readonly_statement_timeout=limits.statement_timeout,
            readonly_idle_timeout=limits.idle_timeout,
        )
    finally:
        await conn.close()
    return 0


async def run_policies_show(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        rows = await policies.show(conn)
    finally:
        await conn.close()
    print(
        render(
            ["relation", "kind", "retention", "compress_after", "refresh_every", "window", "enforced by"],
            [
                [
                    r.relation,
                    r.kind,
                    r.retention,
                    r.compress_after,
                    r.refresh_every,
                    _window(r.refresh_start_offset, r.refresh_end_offset),
                    r.jobs,
                ]
                for r in rows
            ],
        )
    )
    return 0


def _window(start, end) -> str:
    from tower.durations import format_duration

    if start is None:
        return "-"
    return f"now-{format_duration(start)} .. now-{format_duration(end)}"


async def run_policies_set(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in policies.SETTABLE if f"--{k.replace('_', '-')}" in args.raw_argv}
    conn = await connect()
    try:
        result = await policies.set_policy(conn, args.relation, given)
    finally:
        await conn.close()
    print(
        render(
            ["relation", "policy", "action", "detail"],
            [[r["relation"], r["policy"], r["action"], r["detail"]] for r in result],
        )
    )
    return 0


async def run_db_info(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        info = await dbinfo.collect(conn)
    finally:
        await conn.close()
    print(f"server:      PostgreSQL {info.server_version}")
    print(f"timescaledb: {info.timescaledb_version} (license: {info.license})")
    print()
    print(
        render(
            ["hypertable", "chunks", "size", "compression", "ratio"],
            [
                [
                    h["name"],
                    h["num_chunks"],
                    human_bytes(h["bytes"]),
                    "on" if h["compression_enabled"] else "off",
                    f"{h['ratio']:.1f}x" if h.get("ratio") else "-",
                ]
                for h in info.hypertables
            ],
        )
    )
    print()
    print(
        render(
            ["continuous aggregate", "real-time", "compression", "size"],
            [
                [
                    c["name"],
                    c.get("note") or ("no" if c["materialized_only"] else "yes"),
                    "on" if c["compression_enabled"] else "off",
                    human_bytes(c["bytes"]),
                ]
                for c in info.caggs
            ],
        )
    )
    print()
    print(
        render(
            ["job", "name", "relation", "every", "last status", "last run", "runs", "failures"],
            [
                [
                    j["job_id"],
                    j["application_name"],
                    j["relation"],
                    j["schedule_interval"],
                    j["last_run_status"],
                    j["last_run_started_at"],
                    j["total_runs"],
                    j["total_failures"],
                ]
                for j in info.jobs
            ],
        )
    )
    return 0
