"""`tower backfill`: fill the gaps a stopped (or REST-less) ingest left open, from the venues' REST history."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import asyncpg

from ingest.backfill import backfill_open
from ingest.rows import utc_now
from ingest.service import stored_contract_sizes
from ingest.venues import REGISTRY
from ingest.venues.base import Venue
from tower.durations import parse_duration
from tower.settings import DatabaseSettings, load
from tower.table import render

GAP_MARKETS_SQL = (Path(__file__).parent / "sql" / "gap_markets.sql").read_text()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backfill",
        help="fill open gaps in the trade feeds from the venues' REST history",
        description="Binance and OKX by trade id, Bybit best effort (its last 1000 trades); Hyperliquid has no "
        "history: its gaps stay open as 'unavailable'. Exit 1 when a venue's REST could not be read.",
    )
    p.add_argument("--venue", choices=sorted(REGISTRY), help="only this venue's gaps (default: all)")
    p.add_argument("--since", type=_since, default=timedelta(hours=24), help="gaps detected this recently (24h)")
    p.add_argument("--rest-url", help="replace the venue's REST root (with --venue)")
    p.add_argument("--concurrency", type=int, default=2, choices=range(1, 9), metavar="1-8", help="gaps at once (2)")
    p.set_defaults(run=run_backfill_command)


def _since(text: str) -> timedelta:
    value = parse_duration(text)
    if value is None:
        raise argparse.ArgumentTypeError("--since needs a duration such as 24h or 7d")
    return value


async def run_backfill_command(args: argparse.Namespace) -> int:
    if args.rest_url and not args.venue:
        raise ValueError("--rest-url needs --venue: each venue has its own REST root")
    dsn = load(DatabaseSettings).dsn
    since = utc_now() - args.since
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=args.concurrency + 1)
    try:
        async with pool.acquire() as conn:
            markets = await conn.fetch(GAP_MARKETS_SQL, since, args.venue)
        venues = [_venue(r["venue"], r["symbols"], args.rest_url) for r in markets if r["venue"] in REGISTRY]
        sizes = await stored_contract_sizes(dsn, venues)
        for v in venues:
            await v.prepare(sizes.get(v.name, {}))
        outcomes = await backfill_open(pool, venues, since, args.concurrency)
    finally:
        await pool.close()
    rows = [
        [
            o.gap.venue,
            o.gap.symbol,
            o.gap.id,
            "-" if o.gap.missing is None else o.gap.missing,
            o.found,
            o.stored,
            o.resolution or "-",
            "yes" if o.finished else "no",
            o.error or "",
        ]
        for o in outcomes
    ]
    headers = ["venue", "symbol", "gap", "missing", "found", "stored", "resolution", "resolved", "error"]
    print(render(headers, rows) if rows else "no open gaps to backfill")
    return 1 if any(o.error for o in outcomes) else 0


def _venue(name: str, symbols: list[str], rest_url: str | None) -> Venue:
    cls = REGISTRY[name]
    extra: dict[str, object] = {"derivs": False}
    if rest_url and cls.has_rest:
        extra["rest_url"] = rest_url
    return cls(symbols, **extra)
