"""`tower metabase provision` and `tower report --html FILE`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from metabase import METABASE_VERSION, spec
from metabase.api import MetabaseError
from metabase.settings import MetabaseSettings
from tower.settings import load

log = logging.getLogger("tower.metabase")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metabase", help=f"Metabase dashboards as code (targets Metabase {METABASE_VERSION})")
    msub = p.add_subparsers(dest="metabase_command", required=True)
    prov = msub.add_parser(
        "provision",
        help="create or update the Ops Overview, Market Health and Risk Monitor dashboards (idempotent)",
        description="Waits for Metabase, completes first-user setup or logs in, connects the database as the "
        "read-only role and upserts the cards and dashboards in metabase/. Settings: TOWER_METABASE_URL, "
        "TOWER_METABASE_EMAIL + TOWER_METABASE_PASSWORD (or TOWER_METABASE_API_KEY), "
        "TOWER_METABASE_DB_HOST, TOWER_METABASE_DB_PORT, TOWER_METABASE_DB_NAME, TOWER_READONLY_PASSWORD.",
    )
    prov.add_argument("--public", action="store_true", help="also enable public sharing and print public links")
    prov.set_defaults(run=run_provision)

    rep = sub.add_parser("report", help="render the dashboards' cards into a self-contained HTML page")
    rep.add_argument("--html", required=True, type=Path, metavar="FILE", help="where to write the page")
    rep.add_argument(
        "--dashboard",
        action="append",
        metavar="NAME",
        help="only this dashboard (key like ops_overview, or its name); repeatable",
    )
    rep.add_argument("--venue", help="venue filter, e.g. binance")
    rep.add_argument("--symbol", help="symbol filter, e.g. BTCUSDT")
    rep.add_argument("--asset", help="asset filter, e.g. BTC (Market Health)")
    rep.add_argument("--hours", type=float, help="how far back to look (default: each dashboard's default)")
    rep.set_defaults(run=run_report)


def run_provision(args: argparse.Namespace) -> int:
    from metabase.provision import provision

    settings = load(MetabaseSettings)
    dashboards = spec.load_all()
    try:
        report = provision(settings, dashboards, public=args.public)
    except MetabaseError as exc:
        print(f"tower metabase provision: error: {exc}", file=sys.stderr)
        return 2
    width = max(len(link.name) for link in report.links)
    for link in report.links:
        print(f"{link.name.ljust(width)}  {link.url}")
        if link.public_url:
            print(f"{'public'.rjust(width)}  {link.public_url}")
    print(report.summary())
    return 0


async def run_report(args: argparse.Namespace) -> int:
    from metabase.report import build_report
    from tower.db import connect

    dashboards = spec.load_all()
    if args.dashboard:
        wanted = {w.lower() for w in args.dashboard}
        dashboards = [d for d in dashboards if d.key in wanted or d.name.lower() in wanted]
        if not dashboards:
            raise ValueError(
                f"no dashboard named {', '.join(args.dashboard)}; "
                f"choose from {', '.join(d.key for d in spec.load_all())}"
            )
    hours = args.hours
    if hours is not None and hours.is_integer():
        hours = int(hours)
    if hours is not None and hours <= 0:
        raise ValueError("--hours must be positive")
    values = {"venue": args.venue, "symbol": args.symbol, "asset": args.asset, "hours": hours}
    conn = await connect()
    try:
        page, failed = await build_report(conn, dashboards, values)
    finally:
        await conn.close()
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(page)
    print(
        f"wrote {args.html} ({len(dashboards)} dashboards, "
        f"{sum(len(d.cards) for d in dashboards)} cards, {failed} failed)"
    )
    return 1 if failed else 0
