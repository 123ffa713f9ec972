"""`tower bench depth`: what full books cost one process. Binance diff-depth frames for books of 20 symbols
(1000 levels a side, as a `limit=1000` snapshot holds) are built before the clock starts, then

- parse + apply: the real adapter's `parse` on one core, no database (samples not due: recv time stands still);
- sampling: one `DepthSampler.sample` of a synced book (sort both sides, bands, slippage, reach), in µs;
- with `--end-to-end`: the same kind of diffs through the loopback Binance server (WebSocket + REST snapshots,
  in this same process, so it shares the core), the runtime and the writer into TOWER_DSN, under the venue
  name `bench-depth` (its rows are deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson

from ingest.cli import positive_number, small_count
from ingest.depth import DepthConfig
from ingest.runtime import RuntimeConfig, run_venue
from ingest.service import tune_gc
from ingest.settings import IngestSettings
from ingest.sim.binance_server import BinanceServer, SimBook, depth_snapshot, depth_update
from ingest.venues.base import Route
from ingest.venues.binance import Binance
from ingest.writer import Writer
from tower.settings import DatabaseSettings, load

BENCH_VENUE = "bench-depth"
LEVELS = 1000  # per side: what GET /fapi/v1/depth?limit=1000 holds
TICK = 0.1
TOP_K = 500_000  # best bid at 49999.9, best ask at 50000.1 (in ticks)
NEAR = 50  # most changes land within this many levels of the top, as on a live book
LIVE_DIFFS_PER_S = 10  # Binance @depth@100ms: at most one diff per symbol every 100 ms
T0_MS = 1_764_000_000_000
FLOOD_FRAMES_PER_S = 40_000  # diffs built per second of --end-to-end: more than one core applies


class BenchDepthBinance(Binance):
    """The real Binance adapter with only its depth connection, under its own venue name."""

    name = BENCH_VENUE

    def routes(self) -> list[Route]:
        return [r for r in super().routes() if r.name.startswith("public-depth")]


def symbols_for(count: int) -> list[str]:
    return [f"B{i:02d}USDT" for i in range(count)]


def _px(k: int) -> str:
    return f"{k * TICK:.1f}"


def initial_books(symbols: list[str]) -> dict[str, SimBook]:
    rng = random.Random(11)
    books = {}
    for s in symbols:
        bids = {_px(TOP_K - i): f"{rng.uniform(0.01, 5):.3f}" for i in range(LEVELS)}
        asks = {_px(TOP_K + 2 + i): f"{rng.uniform(0.01, 5):.3f}" for i in range(LEVELS)}
        books[s] = SimBook(bids, asks, last_u=1000, tx_ms=T0_MS, event_ms=T0_MS)
    return books


def next_diff(book: SimBook, symbol: str, changes: int, rng: random.Random, tx_ms: int) -> dict:
    """A plausible diff on `book` (changed in place): new sizes near the top, a tenth of them removals; each
    side keeps to its own prices, so the book never crosses."""
    bids, asks = [], []
    for _ in range(changes):
        depth = int(rng.expovariate(1 / NEAR)) % LEVELS
        size = "0" if rng.random() < 0.1 else f"{rng.uniform(0.01, 5):.3f}"
        if rng.random() < 0.5:
            bids.append((_px(TOP_K - depth), size))
        else:
            asks.append((_px(TOP_K + 2 + depth), size))
    diff = depth_update(symbol, book.last_u + 1, book.last_u + changes, book.last_u, bids, asks, tx_ms, tx_ms + 1)
    book.change(bids, asks)
    book.last_u, book.tx_ms, book.event_ms = book.last_u + changes, tx_ms, tx_ms + 1
    return diff


def build_diffs(books: dict[str, SimBook], count: int, changes: int) -> list[bytes]:
    """`count` diffs round-robin over the books (which end up in the state after the last one)."""
    rng = random.Random(7)
    symbols = list(books)
    out = []
    for i in range(count):
        s = symbols[i % len(symbols)]
        out.append(orjson.dumps(next_diff(books[s], s, changes, rng, T0_MS + 1 + i)))
    return out


def snapshot_body(book: SimBook) -> bytes:
    bids, asks = book.top(LEVELS)
    return orjson.dumps(depth_snapshot(book.last_u, bids, asks, book.tx_ms, book.event_ms))


def synced_adapter(books: dict[str, SimBook], config: DepthConfig) -> Binance:
    venue = Binance(list(books), rest_url="http://127.0.0.1:9", derivs=False)
    venue.configure_depth(config)
    recv = datetime.now(UTC)
    for s, book in books.items():
        venue.parse_depth_snapshot(s, snapshot_body(book), recv)
    return venue


def parse_apply(symbols: list[str], frames: int, changes: int, rounds: int) -> tuple[float, float, Binance]:
    """(best diffs/s of parse + apply, best µs per sample, the last adapter)."""
    start = initial_books(symbols)
    diffs = build_diffs(copy.deepcopy(start), frames, changes)
    best_rate, best_us, venue = 0.0, float("inf"), None
    for _ in range(rounds):
        venue = synced_adapter(start, DepthConfig())
        recv = datetime.now(UTC)
        t = time.perf_counter()
        for frame in diffs:
            venue.parse(frame, recv)
        elapsed = time.perf_counter() - t
        if venue.counters["depth"] != len(diffs):
            raise RuntimeError(f"{venue.counters['depth']} of {len(diffs)} diffs applied: {dict(venue.counters)}")
        best_rate = max(best_rate, len(diffs) / elapsed)
        best_us = min(best_us, sample_cost(venue, symbols))
    assert venue is not None
    return best_rate, best_us, venue


def sample_cost(venue: Binance, symbols: list[str], repeat: int = 5) -> float:
    """µs for one sample of a synced book, as the sampler takes it (the book marked changed)."""
    assert venue.depth is not None
    n = 0
    t = time.perf_counter()
    for _ in range(repeat):
        for s in symbols:
            book = venue.depth.book(s)
            book.changed = True
            if venue.depth.sample(s, book) is None:
                raise RuntimeError(f"{s}: no sample")
            n += 1
    return (time.perf_counter() - t) / n * 1e6


@dataclass
class EndToEnd:
    rate: float  # diffs applied per second
    sent: int
    applied: int
    samples: int  # rows the writer stored in ops.raw_book_depth


async def end_to_end(dsn: str, symbols: list[str], seconds: float, changes: int, settings: IngestSettings) -> EndToEnd:
    """Diffs per second applied by the real runtime reading the loopback server (same process)."""
    logging.getLogger("websockets").setLevel(logging.WARNING)  # the loopback server's own chatter
    server = await BinanceServer().start()
    server.books = initial_books(symbols)
    server.depth_gate = asyncio.Event()
    venue = BenchDepthBinance(symbols, ws_url=server.root, rest_url=server.rest_url, derivs=False)
    venue.configure_depth(settings.depth_config())
    writer = Writer(dsn, settings.writer_config("bench-depth"))
    stop = asyncio.Event()
    await writer.start()
    task = asyncio.create_task(run_venue(venue, writer, RuntimeConfig(stale_after_s=60), stop))
    rng = random.Random(3)
    try:
        await server.wait_subscribed(f"{symbols[-1].lower()}@depth@100ms", within_s=30)
        for s in symbols:  # the first diffs start the sync; their snapshots are answered all at once
            await server.publish(next_diff(server.books[s], s, changes, rng, T0_MS))
        await server.wait_until(lambda: len(server.depth_requests) == len(symbols), within_s=30)
        server.depth_gate.set()
        await _until(lambda: all(venue.depth.book(s).synced for s in symbols), 30)
        # The flood continues the chain from the served books; frames are encoded before the clock starts.
        frames = build_diffs(copy.deepcopy(server.books), int(seconds * FLOOD_FRAMES_PER_S), changes)
        streams = [f"{orjson.loads(f)['s'].lower()}@depth@100ms" for f in frames]
        texts = [f.decode() for f in frames]
        applied0, sent = venue.counters["depth"], 0
        t = time.perf_counter()
        for stream, text in zip(streams, texts, strict=True):
            sent += await server.publish_raw(stream, text)
            if time.perf_counter() - t > seconds:
                break
        await _until(lambda: venue.counters["depth"] - applied0 >= sent, 5)
        elapsed = time.perf_counter() - t
        applied = venue.counters["depth"] - applied0
        if venue.counters.get("depth.seq_break") or any(k.startswith("rejected") for k in venue.counters):
            print(f"warning: unexpected venue counters {dict(venue.counters)}")
    finally:
        stop.set()
        await task
        await writer.close()
        await server.stop()
        samples = await _cleanup(dsn)
    return EndToEnd(applied / elapsed, sent, applied, samples)


async def _until(ready, within_s: float) -> None:
    for _ in range(round(within_s / 0.01)):
        if ready():
            return
        await asyncio.sleep(0.01)


async def _cleanup(dsn: str) -> int:
    """Deletes the benchmark's rows; returns how many samples it had stored."""
    conn = await asyncpg.connect(dsn)
    try:
        samples = await conn.fetchval("SELECT count(*) FROM ops.raw_book_depth WHERE venue = $1", BENCH_VENUE)
        for table in ("raw_book_depth", "connection_events", "rejected_messages", "feed_gaps"):
            await conn.execute(f"DELETE FROM ops.{table} WHERE venue = $1", BENCH_VENUE)
    finally:
        await conn.close()
    return samples


async def run_depth_bench(
    symbols: int,
    frames: int,
    changes: int,
    rounds: int,
    e2e_seconds: float | None = None,
    dsn: str | None = None,
    settings: IngestSettings | None = None,
) -> int:
    names = symbols_for(symbols)
    rate, sample_us, _ = parse_apply(names, frames, changes, rounds)
    print(
        f"parse+apply: {rate:,.0f} diffs/s on one core ({symbols} books of {LEVELS} levels a side, "
        f"{changes} level changes a diff, best of {rounds} rounds of {frames} diffs)",
        flush=True,
    )
    print(f"sample: {sample_us:,.0f} µs per sample of a {LEVELS}-level-a-side book (sort, bands, slippage, reach)")
    live_share = symbols * (LIVE_DIFFS_PER_S / rate + sample_us / 1e6)  # 10 diffs + 1 sample a symbol a second
    print(f"at Binance's live rate ({LIVE_DIFFS_PER_S} diffs/s and 1 sample/s a symbol): {live_share:.1%} of a core")
    if e2e_seconds is not None:
        assert dsn is not None and settings is not None, "--end-to-end needs the database and the ingest settings"
        e2e = await end_to_end(dsn, names, e2e_seconds, changes, settings)
        print(
            f"end to end: {e2e.rate:,.0f} diffs/s applied ({e2e.applied} of {e2e.sent} sent; loopback server in "
            f"the same process, runtime, REST snapshots, writer: {e2e.samples} samples stored, then deleted)"
        )
    print(f"RESULT depth_msgs_per_s={rate:.0f} sample_us={sample_us:.0f}", flush=True)
    return 0


def register(bench: argparse._SubParsersAction) -> None:
    """`tower bench depth` (called from ingest/bench/cli.py)."""
    p = bench.add_parser("depth", help="depth diffs per second (books for 20 symbols) and the cost of a sample")
    p.add_argument("--symbols", type=small_count, default=20, help="books kept (default 20)")
    p.add_argument("--frames", type=_frames, default=100_000, help="diffs per round (default 100000)")
    p.add_argument("--changes", type=small_count, default=10, help="level changes per diff (default 10)")
    p.add_argument("--rounds", type=small_count, default=3, help="rounds; the best is kept (default 3)")
    p.add_argument(
        "--end-to-end",
        type=positive_number,
        metavar="SECONDS",
        help="also flood diffs this long through the loopback server, runtime and writer into TOWER_DSN",
    )
    p.set_defaults(run=_run)


def _frames(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 10_000_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 100 to 10000000, not {text!r}")
    return int(text)


async def _run(args: argparse.Namespace) -> int:
    if args.end_to_end is None:
        return await run_depth_bench(args.symbols, args.frames, args.changes, args.rounds)
    tune_gc()
    dsn, settings = load(DatabaseSettings).dsn, load(IngestSettings)
    return await run_depth_bench(args.symbols, args.frames, args.changes, args.rounds, args.end_to_end, dsn, settings)
