"""`tower instruments list | activate VENUE SYMBOL | deactivate VENUE SYMBOL | sync VENUE`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from ingest.settings import IngestSettings, VenueConfig
from ingest.status import age
from ingest.universe import ListingUnavailable, fetch_listing, sync_instruments
from ingest.venues import REGISTRY, make_venue
from tower.db import connect
from tower.settings import ConfigError, load
from tower.table import render

SQL_DIR = Path(__file__).parent / "sql"
LIST_SQL = (SQL_DIR / "instruments_list.sql").read_text()
SET_ACTIVE_SQL = (SQL_DIR / "set_active.sql").read_text()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "instruments",
        help="the instrument universe: list, activate/deactivate, sync from a venue's instrument list",
        description="Active instruments are scored and alerted on; an instrument becomes active when its first "
        "data is stored, or with `activate`.",
    )
    isub = p.add_subparsers(dest="instruments_command", required=True)
    ls = isub.add_parser("list", help="venue, symbol, asset, quote, contract/tick size, status, active, last data")
    ls.add_argument("--venue", choices=sorted(REGISTRY), help="only this venue")
    ls.set_defaults(run=run_list)
    for name, active in (("activate", True), ("deactivate", False)):
        a = isub.add_parser(name, help=f"{name} one instrument (a user's deactivation outlasts arriving data)")
        a.add_argument("venue", choices=sorted(REGISTRY))
        a.add_argument("symbol")
        a.set_defaults(run=run_set_active, active=active)
    sy = isub.add_parser(
        "sync", help="asset, quote, contract size, tick size, status from the venue's list; delisted deactivated"
    )
    sy.add_argument("venue", choices=sorted(REGISTRY))
    sy.add_argument("--rest-url", help="the venue's REST root (default: the venue's own)")
    sy.add_argument("--testnet", action="store_true", help="the venue's testnet REST root")
    sy.set_defaults(run=run_sync)


async def run_list(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        rows = await conn.fetch(LIST_SQL, args.venue)
    finally:
        await conn.close()
    headers = ["venue", "symbol", "asset", "quote", "contract size", "tick size", "status", "active", "last data"]
    print(
        render(
            headers,
            [
                [
                    r["venue"],
                    r["symbol"],
                    r["asset"],
                    r["quote"],
                    r["contract_size"],
                    r["tick_size"],
                    r["status"],
                    "yes" if r["active"] else f"no ({r['deactivated_by']})" if r["deactivated_by"] else "no",
                    age(r["last_data_age_s"]),
                ]
                for r in rows
            ],
        )
    )
    return 0


async def run_set_active(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        found = await conn.fetchval(SET_ACTIVE_SQL, args.venue, args.symbol, args.active)
    finally:
        await conn.close()
    if found is None:
        raise ConfigError(
            f"no instrument {args.venue} {args.symbol} in ops.instruments; "
            f"`tower instruments sync {args.venue}` adds what the venue lists"
        )
    print(f"{args.venue} {args.symbol}: {'active' if args.active else 'inactive'}")
    return 0


async def run_sync(args: argparse.Namespace) -> int:
    try:
        symbols = list(REGISTRY[args.venue].example_symbols)  # the list asked for is the venue's, not theirs
        config = VenueConfig(name=args.venue, symbols=symbols, rest_url=args.rest_url, testnet=args.testnet)
    except ValidationError as exc:
        raise ConfigError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    venue = make_venue(config, load(IngestSettings))
    try:
        listed = await fetch_listing(venue)
    except ListingUnavailable as exc:
        raise ConfigError(str(exc)) from None
    conn = await connect()
    try:
        result = await sync_instruments(conn, venue.name, listed)
    finally:
        await conn.close()
    print(f"{venue.name}: {result.listed} perpetuals listed, {result.trading} open for trading")
    if result.deactivated:
        print(f"deactivated (delisted, not trading or no longer listed): {', '.join(result.deactivated)}")
    return 0
