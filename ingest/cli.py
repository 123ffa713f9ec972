"""`tower ingest`, `tower status`, `tower demo`, `tower bench ingest`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pydantic import ValidationError

from ingest.service import ingest, tune_gc
from ingest.settings import IngestSettings, VenueConfig, read_config
from ingest.status import age, feed_status
from ingest.venues import REGISTRY, make_venue
from ingest.venues.base import Venue
from tower.db import connect
from tower.metrics import serve as serve_metrics
from tower.settings import ConfigError, DatabaseSettings, MetricsSettings, load
from tower.table import render

log = logging.getLogger("ingest")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="stream trades, L1 books and derivatives context from venues into the database",
                       description="`tower ingest binance --symbols BTCUSDT,ETHUSDT` or `tower ingest --config FILE`")
    p.add_argument("venue", nargs="?", choices=sorted(REGISTRY), help="one venue (or use --config)")
    p.add_argument("--symbols", type=_symbols,
                   help="comma-separated venue symbols, e.g. BTCUSDT,ETHUSDT (binance, bybit), BTC,ETH (hyperliquid), "
                        "BTC-USDT-SWAP (okx)")
    p.add_argument("--ws-url", help="replace the venue's base URL (Binance: the root; routes are appended)")
    p.add_argument("--testnet", action="store_true", help="use the venue's testnet endpoint")
    p.add_argument("--rest-url", help="replace the venue's REST root (Binance open interest, OKX contract sizes)")
    p.add_argument("--no-derivs", action="store_true",
                   help="trades and L1 only: no mark/index/funding/open interest/liquidations")
    p.add_argument("--config", type=Path,
                   help="TOML file with several [[venues]] (name, symbols, ws_url, testnet, rest_url, derivs)")
    p.add_argument("--duration", type=_positive, help="stop after this many seconds, flush everything, exit 0")
    p.add_argument("--processes", type=_count, default=1,
                   help="spread the symbols over this many worker processes (one core each; default 1)")
    p.set_defaults(run=run_ingest)

    p = sub.add_parser("status", help="feed health per venue/symbol: last message age, rate, reconnects, gaps")
    p.set_defaults(run=run_status)

    p = sub.add_parser("demo", help="SIMULATED venues on loopback + ingest, so dashboards show live data offline")
    p.add_argument("--duration", type=_positive, help="stop after this many seconds (default: until Ctrl-C)")
    p.set_defaults(run=run_demo)

    bench = _subparsers(sub.choices.get("bench") or sub.add_parser("bench", help="benchmarks (print figures)"))
    p = bench.add_parser("ingest", help="loopback flood through the real connector and writer into TOWER_DSN")
    p.add_argument("--seconds", type=_positive, default=10.0, help="how long to flood (default 10)")
    p.add_argument("--rate", type=_positive, help="frames per second instead of as fast as possible (latency run)")
    p.add_argument("--symbols", type=int, default=10, help="symbols to spread frames over (default 10)")
    p.add_argument("--processes", type=_count, default=2,
                   help="ingest worker processes, as `tower ingest --processes` (default 2: both cores)")
    p.set_defaults(run=run_bench)

    p = bench.add_parser("parse", help="cost of one frame per venue adapter and message kind (one core, no database)")
    p.add_argument("--frames", type=_count_frames, default=20_000, help="frames per venue and kind (default 20000)")
    p.add_argument("--rounds", type=_count, default=5, help="interleaved rounds; the best of each is kept (default 5)")
    p.set_defaults(run=run_parse_bench)

    p = bench.add_parser("soak", help="faults on schedule (database crashes, venue drops, stalls, malformed floods), "
                                      "then reconcile: nothing lost, nothing twice")
    p.add_argument("--seconds", type=_positive, default=300.0, help="how long to run (default 300)")
    p.add_argument("--rate", type=_positive, default=2000.0, help="trades per second the venue sends (default 2000)")
    p.add_argument("--db-restarts", type=int, default=10, help="database crashes + restarts (default 10)")
    p.add_argument("--venue-drops", type=int, default=100,
                   help="venue connection drops: close frames, resets, silent sockets in turn (default 100)")
    p.add_argument("--memory-mb", type=_positive, default=1024.0, help="peak RSS bound to check (default 1024)")
    p.add_argument("--port", type=int, default=55497, help="port of the soak's own database server (default 55497)")
    p.set_defaults(run=run_soak)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The parser's subcommands, created once: other command modules may add their own `bench X`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="bench_command", required=True)


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. BTCUSDT,ETHUSDT")
    return symbols


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def venues_from_args(args: argparse.Namespace, settings: IngestSettings) -> list[Venue]:
    return [make_venue(c, settings) for c in configs_from_args(args)]


def configs_from_args(args: argparse.Namespace) -> list[VenueConfig]:
    if args.config is not None:
        if args.venue or args.symbols or args.ws_url or args.testnet or args.rest_url or args.no_derivs:
            raise ConfigError("use either --config FILE or VENUE --symbols ..., not both")
        configs = read_config(args.config)
    elif args.venue is None:
        raise ConfigError("name a venue (" + ", ".join(sorted(REGISTRY)) + ") with --symbols, or give --config FILE")
    elif not args.symbols:
        raise ConfigError(f"--symbols is required, e.g. tower ingest {args.venue} --symbols "
                          + ",".join(REGISTRY[args.venue].example_symbols))
    else:
        try:
            configs = [VenueConfig(name=args.venue, symbols=args.symbols, ws_url=args.ws_url, testnet=args.testnet,
                                   rest_url=args.rest_url, derivs=not args.no_derivs)]
        except ValidationError as exc:
            raise ConfigError("; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: "
                                        f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())) from None
    return configs


async def run_ingest(args: argparse.Namespace) -> int:
    db = load(DatabaseSettings)
    settings = load(IngestSettings)
    metrics_port = load(MetricsSettings).metrics_port
    venues = venues_from_args(args, settings)  # also what the workers build: settings errors surface here
    if args.processes > 1:
        from ingest.processes import ingest_processes

        return await ingest_processes(db.dsn, configs_from_args(args), args.processes, args.duration, metrics_port)
    serve_metrics(metrics_port)
    names = "-".join(v.name for v in venues)
    tune_gc()
    for v in venues:
        log.info("ingesting %s: %d symbols over %d connections", v.name, len(v.symbols), len(v.routes()))
    result = await ingest(db.dsn, venues, duration_s=args.duration,
                          runtime_for=settings.runtime_config,
                          writer_config=settings.writer_config(f"ingest-{names}"))
    if not result.fully_written:
        print(f"tower ingest: the database did not come back; unwritten rows are kept in {settings.spill_dir} "
              "and replayed by the next run")
        return 3
    return 0


async def run_status(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        rows = await feed_status(conn)
    finally:
        await conn.close()
    print(render(["venue", "symbol", "last message", "last derivs", "msgs/min", "reconnects today", "open gaps",
                  "rejected today"],
                 [[r.venue, r.symbol, age(r.last_age_s), age(r.derivs_age_s), f"{r.msgs_per_min:.1f}",
                   r.reconnects_today, r.open_gaps, r.rejected_today] for r in rows]))
    return 0


async def run_demo(args: argparse.Namespace) -> int:
    from ingest.sim.demo import run_demo as demo

    tune_gc()
    serve_metrics(load(MetricsSettings).metrics_port)
    return await demo(load(DatabaseSettings).dsn, args.duration, load(IngestSettings))


async def run_soak(args: argparse.Namespace) -> int:
    from ingest.soak import SoakPlan
    from ingest.soak import run_soak as soak

    tune_gc()
    return await soak(SoakPlan(seconds=args.seconds, rate=args.rate, db_restarts=args.db_restarts,
                               venue_drops=args.venue_drops, memory_mb=args.memory_mb, port=args.port))


def _count_frames(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 100 to 1000000, not {text!r}")
    return int(text)


async def run_parse_bench(args: argparse.Namespace) -> int:
    from ingest.parsebench import run_parse_bench as bench

    return bench(args.frames, args.rounds)


async def run_bench(args: argparse.Namespace) -> int:
    from ingest.bench import run_bench as bench

    return await bench(load(DatabaseSettings).dsn, args.seconds, args.rate, args.symbols, load(IngestSettings),
                       processes=args.processes)
