"""`tower bench ingest`, `tower bench parse`, `tower bench soak`: measurements that print figures."""

from __future__ import annotations

import argparse
import os

from ingest.bench import depth
from ingest.cli import positive_number, small_count
from ingest.service import tune_gc
from ingest.settings import IngestSettings
from tower.settings import DatabaseSettings, load


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks (print figures)").add_subparsers(
        dest="bench_command", required=True
    )
    p = bench.add_parser("ingest", help="loopback flood through the real connector and writer into TOWER_DSN")
    p.add_argument("--seconds", type=positive_number, default=10.0, help="how long the burst run floods (default 10)")
    p.add_argument("--step-seconds", type=positive_number, default=20.0, help="length of each paced step (default 20)")
    p.add_argument(
        "--start-rate", type=positive_number, default=5000.0, help="first paced rate, msgs/s in total (default 5000)"
    )
    p.add_argument(
        "--max-rate", type=positive_number, default=160_000.0, help="highest paced rate tried (default 160000)"
    )
    p.add_argument(
        "--precision",
        type=_fraction,
        default=0.1,
        help="bisect until the last passing and first failing rates are this fraction apart (default 0.1)",
    )
    p.add_argument(
        "--rate", type=positive_number, help="one paced step at this rate instead of the search (latency check)"
    )
    p.add_argument("--symbols", type=int, default=10, help="symbols to spread frames over (default 10)")
    p.add_argument(
        "--processes",
        type=small_count,
        default=2,
        help="ingest worker processes, as `tower ingest --processes` (default 2: both cores)",
    )
    p.set_defaults(run=run_bench)

    p = bench.add_parser("parse", help="cost of one frame per venue adapter and message kind (one core, no database)")
    p.add_argument("--frames", type=_count_frames, default=20_000, help="frames per venue and kind (default 20000)")
    p.add_argument(
        "--rounds", type=small_count, default=5, help="interleaved rounds; the best of each is kept (default 5)"
    )
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="instead: client CPU per message of each hot-path step (framing ... COPY encode; COPY needs TOWER_DSN)",
    )
    p.set_defaults(run=run_parse_bench)

    p = bench.add_parser(
        "soak",
        help="faults on schedule (database crashes, venue drops, stalls, malformed floods), "
        "then reconcile: nothing lost, nothing twice",
    )
    p.add_argument("--seconds", type=positive_number, default=300.0, help="how long to run (default 300)")
    p.add_argument(
        "--rate", type=positive_number, default=2000.0, help="trades per second the venue sends (default 2000)"
    )
    p.add_argument("--db-restarts", type=int, default=10, help="database crashes + restarts (default 10)")
    p.add_argument(
        "--venue-drops",
        type=int,
        default=100,
        help="venue connection drops: close frames, resets, silent sockets in turn (default 100)",
    )
    p.add_argument("--memory-mb", type=positive_number, default=1024.0, help="peak RSS bound to check (default 1024)")
    p.add_argument("--port", type=int, default=55497, help="port of the soak's own database server (default 55497)")
    p.set_defaults(run=run_soak)

    depth.register(bench)


def _fraction(text: str) -> float:
    value = positive_number(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0.1 = 10 %), not {text!r}")
    return value


def _count_frames(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 100 to 1000000, not {text!r}")
    return int(text)


async def run_bench(args: argparse.Namespace) -> int:
    from ingest.bench.throughput import StepPlan
    from ingest.bench.throughput import run_bench as bench

    if args.start_rate > args.max_rate:
        print(f"error: --start-rate {args.start_rate:g} is above --max-rate {args.max_rate:g}")
        return 2
    plan = StepPlan(args.step_seconds, args.start_rate, args.max_rate, args.precision, args.rate)
    return await bench(
        load(DatabaseSettings).dsn, args.seconds, args.symbols, load(IngestSettings), args.processes, plan
    )


async def run_parse_bench(args: argparse.Namespace) -> int:
    from ingest.bench.parse import run_parse_bench as bench

    if args.breakdown:
        from ingest.bench.breakdown import breakdown

        return await breakdown(args.frames, args.rounds, os.environ.get("TOWER_DSN"))
    return bench(args.frames, args.rounds)


async def run_soak(args: argparse.Namespace) -> int:
    from ingest.bench.soak import SoakPlan
    from ingest.bench.soak import run_soak as soak

    tune_gc()
    return await soak(
        SoakPlan(
            seconds=args.seconds,
            rate=args.rate,
            db_restarts=args.db_restarts,
            venue_drops=args.venue_drops,
            memory_mb=args.memory_mb,
            port=args.port,
        )
    )
