"""`tower ingest`, `tower status`, `tower demo`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from ingest.service import NEVER_CONNECTED, ingest, tune_gc
from ingest.settings import IngestSettings, VenueConfig, read_config
from ingest.status import age, feed_status
from ingest.universe import all_symbols, check_symbols, wants_all
from ingest.venues import REGISTRY, make_venue
from ingest.venues.base import Venue
from tower.db import connect
from tower.metrics import serve as serve_metrics
from tower.settings import ConfigError, DatabaseSettings, MetricsSettings, load
from tower.table import render

log = logging.getLogger("ingest")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="stream trades, L1 books and derivatives context from venues into the database",
        description="`tower ingest binance --symbols BTCUSDT,ETHUSDT` or `tower ingest --config FILE`",
    )
    p.add_argument("venue", nargs="?", choices=sorted(REGISTRY), help="one venue (or use --config)")
    p.add_argument(
        "--symbols",
        type=_symbols,
        help="comma-separated venue symbols, e.g. BTCUSDT,ETHUSDT (binance, bybit), BTC,ETH (hyperliquid), "
        "BTC-USDT-SWAP (okx), checked against the venue's instrument list; `all`: every listed perpetual",
    )
    p.add_argument("--ws-url", help="replace the venue's base URL (Binance: the root; routes are appended)")
    p.add_argument("--testnet", action="store_true", help="use the venue's testnet endpoint")
    p.add_argument(
        "--rest-url",
        help="replace the venue's REST root (instrument list; Binance open interest, OKX contract sizes); "
        "with --ws-url and no --rest-url, no REST at all",
    )
    p.add_argument(
        "--no-derivs", action="store_true", help="trades and L1 only: no mark/index/funding/open interest/liquidations"
    )
    p.add_argument(
        "--no-depth",
        action="store_true",
        help="no full order books (ops.raw_book_depth): trades, L1 and derivatives only",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="TOML file with several [[venues]] (name, symbols, ws_url, testnet, rest_url, derivs, depth)",
    )
    p.add_argument("--duration", type=positive_number, help="stop after this many seconds, flush everything, exit 0")
    p.add_argument(
        "--processes",
        type=small_count,
        default=1,
        help="spread the symbols over this many worker processes (one core each; default 1)",
    )
    p.set_defaults(run=run_ingest)

    p = sub.add_parser(
        "status",
        help="feed health per venue/symbol: last message age, rate, reconnects, gaps, complete minutes, overload, "
        "last depth",
    )
    p.set_defaults(run=run_status)

    p = sub.add_parser("demo", help="SIMULATED venues on loopback + ingest, so dashboards show live data offline")
    p.add_argument("--duration", type=positive_number, help="stop after this many seconds (default: until Ctrl-C)")
    p.set_defaults(run=run_demo)


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. BTCUSDT,ETHUSDT")
    return symbols


def small_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return int(text)


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def configs_from_args(args: argparse.Namespace) -> list[VenueConfig]:
    if args.config is not None:
        one_venue = (args.venue, args.symbols, args.ws_url, args.testnet, args.rest_url, args.no_derivs, args.no_depth)
        if any(one_venue):
            raise ConfigError("use either --config FILE or VENUE --symbols ..., not both")
        configs = read_config(args.config)
    elif args.venue is None:
        raise ConfigError("name a venue (" + ", ".join(sorted(REGISTRY)) + ") with --symbols, or give --config FILE")
    elif not args.symbols:
        raise ConfigError(
            f"--symbols is required, e.g. tower ingest {args.venue} --symbols "
            + ",".join(REGISTRY[args.venue].example_symbols)
        )
    else:
        try:
            configs = [
                VenueConfig(
                    name=args.venue,
                    symbols=args.symbols,
                    ws_url=args.ws_url,
                    testnet=args.testnet,
                    rest_url=args.rest_url,
                    derivs=not args.no_derivs,
                    depth=not args.no_depth,
                )
            ]
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(
                    f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: "
                    f"{e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()
                )
            ) from None
    return configs


async def resolved_configs(configs: list[VenueConfig], settings: IngestSettings) -> list[VenueConfig]:
    """`--symbols all` replaced by every perpetual the venue lists as trading."""
    out = []
    for c in configs:
        if wants_all(c.symbols):
            c = c.model_copy(update={"symbols": await all_symbols(make_venue(c, settings))})
        out.append(c)
    return out


async def run_ingest(args: argparse.Namespace) -> int:
    db = load(DatabaseSettings)
    settings = load(IngestSettings)
    metrics_port = load(MetricsSettings).metrics_port
    configs = await resolved_configs(configs_from_args(args), settings)
    venues = [make_venue(c, settings) for c in configs]  # also what the workers build: settings errors surface here
    await check_symbols(venues)
    if args.processes > 1:
        from ingest.processes import ingest_processes

        return await ingest_processes(db.dsn, configs, args.processes, args.duration, metrics_port)
    serve_metrics(metrics_port)
    names = "-".join(v.name for v in venues)
    tune_gc()
    for v in venues:
        log.info("ingesting %s: %d symbols over %d connections", v.name, len(v.symbols), len(v.routes()))
    result = await ingest(
        db.dsn,
        venues,
        duration_s=args.duration,
        runtime_for=settings.runtime_config,
        writer_config=settings.writer_config(f"ingest-{names}"),
    )
    if not result.fully_written:
        print(
            f"tower ingest: the database did not come back; unwritten rows are kept in {settings.spill_dir} "
            "and replayed by the next run"
        )
        return 3
    if result.never_connected:
        print(never_connected_message(result.never_connected, venues), file=sys.stderr)
        return NEVER_CONNECTED
    return 0


def never_connected_message(names: list[str], venues: list[Venue]) -> str:
    urls = {v.name: sorted({r.url for r in v.routes()}) for v in venues}
    where = "; ".join(f"{n} ({', '.join(urls.get(n, []))})" for n in names)
    return f"tower ingest: never connected to {where}: check --ws-url / --testnet and the network"


async def run_status(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        rows = await feed_status(conn)
    finally:
        await conn.close()
    print(
        render(
            [
                "venue",
                "symbol",
                "last message",
                "last derivs",
                "msgs/min",
                "reconnects today",
                "open gaps",
                "rejected today",
                "complete 24h",
                "L1 conflated today",
                "paused today",
                "last depth",
            ],
            [
                [
                    r.venue,
                    r.symbol,
                    age(r.last_age_s),
                    age(r.derivs_age_s),
                    f"{r.msgs_per_min:.1f}",
                    r.reconnects_today,
                    r.open_gaps,
                    r.rejected_today,
                    f"{r.complete_24h_pct:.1f}%",
                    r.conflated_today,
                    f"{r.paused_today_s:.1f}s",
                    # Blank, not "never": most markets of a venue without full books never get any.
                    "" if r.depth_age_s is None else age(r.depth_age_s),
                ]
                for r in rows
            ],
        )
    )
    return 0


async def run_demo(args: argparse.Namespace) -> int:
    from ingest.sim.demo import run_demo as demo

    tune_gc()
    serve_metrics(load(MetricsSettings).metrics_port)
    return await demo(load(DatabaseSettings).dsn, args.duration, load(IngestSettings))
