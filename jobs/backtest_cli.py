"""`tower rules backtest --rules FILE [--since 7d] [--until TS] [--json]`: current rules vs FILE, side by side."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import orjson

from jobs.backtest import RuleSummary, compare
from jobs.passes import floor_minute
from jobs.rules import load_rules
from jobs.settings import JobsSettings
from tower.settings import load
from tower.table import render

COLUMNS = ("events", "fired", "firing_minutes", "flaps", "median_minutes_to_fire")


def register(sub: argparse._SubParsersAction, duration, timestamp) -> None:
    p = sub.add_parser("rules", help="work on the risk rules")
    verbs = p.add_subparsers(dest="verb", required=True)
    bt = verbs.add_parser(
        "backtest", help="replay scoring and evaluation over stored data (in memory) for the current rules and FILE"
    )
    bt.add_argument("--rules", required=True, help="the candidate rules file (merged over the defaults)")
    bt.add_argument("--since", type=duration, default=timedelta(days=7), help="period before --until (default 7d)")
    bt.add_argument("--until", type=timestamp, help="end of the period, UTC (default: the current minute)")
    bt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bt.set_defaults(run=run_backtest)


async def run_backtest(args: argparse.Namespace) -> int:
    from tower.db import connect

    settings = load(JobsSettings)
    current, candidate = load_rules(settings.rules_file), load_rules(args.rules)
    until = floor_minute(args.until or datetime.now(UTC))
    since = until - args.since
    conn = await connect()
    try:
        result = await compare(conn, current, candidate, since, until)
    finally:
        await conn.close()
    if args.json:
        doc = {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rules": {n: {k: v.as_dict() if v else None for k, v in sides.items()} for n, sides in result.items()},
        }
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return 0
    print(f"backtest {since.isoformat()} .. {until.isoformat()}: current rules | {args.rules}")
    header = ["rule", *(f"{c} {side}" for c in COLUMNS for side in ("now", "file"))]
    print(
        render(
            header,
            [
                [n, *(_cell(sides, c, side) for c in COLUMNS for side in ("current", "candidate"))]
                for n, sides in result.items()
            ],
        )
    )
    return 0


def _cell(sides: dict[str, RuleSummary | None], column: str, side: str) -> object:
    summary = sides[side]
    if summary is None:
        return "off"
    value = getattr(summary, column)
    return "-" if value is None else value
