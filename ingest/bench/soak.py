"""`tower bench soak`: the real connector and writer under faults, then an exact reconciliation.

A loopback Binance-protocol server streams sequence-numbered aggTrades (with deliberate id skips)
while a schedule restarts the database server (crash: `pg_ctl -m immediate`), drops venue
connections (close frames, TCP resets, half-open sockets that go silent), stalls the database
(ACCESS EXCLUSIVE lock on ops.raw_trades) and floods malformed frames. The database is the soak's
own PostgreSQL + TimescaleDB instance, run from the debootstrap root of `scripts/local-timescaledb`
on its own port and data directory, so no one else's server is disturbed.

Reconciliation: every trade the server delivered is stored exactly once, or lies inside a gap the
connector recorded (a trade in flight when a socket was reset cannot be had again: the venue does
not replay); every deliberate skip is a recorded gap; every malformed frame is quarantined.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from ingest.bench.soak_venue import SoakVenue
from ingest.rows import COLUMNS
from ingest.runtime import RuntimeConfig, run_venue
from ingest.venues.base import Route
from ingest.venues.binance import Binance
from ingest.writer import Batch, Writer, WriterConfig
from tower.migrate import migrate

RECV_TS = COLUMNS["raw_trades"].index("recv_ts")

VENUE = "soak"
ROOT = Path(os.environ.get("TOWER_TSDB_ROOT", "/var/tmp/tower-tsdb/root"))
PGBIN = "/usr/lib/postgresql/17/bin"
DATA = "/var/lib/tower-soak/data"  # inside the root


class SoakBinance(Binance):
    """The real Binance adapter, aggTrade route only, under its own venue name."""

    name = VENUE

    def routes(self) -> list[Route]:
        return [r for r in super().routes() if r.name.startswith("market")]


class SoakDatabase:
    """A PostgreSQL 17 + TimescaleDB server the soak owns: created fresh, crashed and restarted at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, user: str = "postgres:postgres") -> None:
        cmd = ["chroot", f"--userspec={user}", str(ROOT), "env", "HOME=/var/lib/postgresql", *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        if not (ROOT / PGBIN.lstrip("/") / "postgres").exists():
            raise RuntimeError(f"no TimescaleDB root at {ROOT}: run `scripts/local-timescaledb start` once to build it")
        self.stop(quiet=True)
        shutil.rmtree(ROOT / DATA.lstrip("/"), ignore_errors=True)
        (ROOT / DATA.lstrip("/")).mkdir(parents=True)
        self._run("chown", "-R", "postgres:postgres", str(Path(DATA).parent), user="root:root")
        self._run(f"{PGBIN}/initdb", "-D", DATA, "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        with open(ROOT / DATA.lstrip("/") / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '/tmp'\n"
                "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
                "dynamic_shared_memory_type = mmap\n"
            )

    def start(self) -> None:
        self._run(f"{PGBIN}/pg_ctl", "-D", DATA, "-l", f"{Path(DATA).parent}/server.log", "-w", "-t", "60", "start")

    def crash(self) -> None:
        self._run(f"{PGBIN}/pg_ctl", "-D", DATA, "-m", "immediate", "-w", "stop")

    def stop(self, quiet: bool = False) -> None:
        try:
            self._run(f"{PGBIN}/pg_ctl", "-D", DATA, "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            if not quiet:
                raise


@dataclass
class Ledger:
    """What the venue side did, to reconcile against what the database holds."""

    sent: dict[str, set[int]] = field(default_factory=dict)  # symbol -> ids delivered to a client
    skipped: list[tuple[str, int, int]] = field(default_factory=list)  # (symbol, last before, first after)
    malformed: int = 0
    db_restarts: int = 0
    venue_drops: dict[str, int] = field(default_factory=lambda: {"close": 0, "reset": 0, "silent": 0})
    stalls: int = 0
    fault_ends: list[tuple[str, float]] = field(default_factory=list)  # pending: (kind, wall time)
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    committed: int = 0
    connected_s: float = 0.0  # time the venue had a subscribed connection to deliver to

    def on_commit(self, batch: Batch, committed_at: float) -> None:
        trades = batch.records.get("raw_trades", ())
        self.committed += len(trades)
        if not trades or not self.fault_ends:
            return
        newest = max(r[RECV_TS].timestamp() for r in trades)
        still = []
        for kind, ended in self.fault_ends:
            if newest >= ended:
                self.recoveries.append((kind, committed_at - ended))
            else:
                still.append((kind, ended))
        self.fault_ends = still


async def stall(dsn: str, seconds: float) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE ops.raw_trades IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(seconds)
        return True
    finally:
        await conn.close()


@dataclass
class SoakPlan:
    seconds: float = 300.0
    rate: float = 2000.0
    symbols: int = 4
    db_restarts: int = 10
    venue_drops: int = 100
    stalls: int = 5
    floods: int = 5
    memory_mb: float = 1024.0
    port: int = 55497


async def faults(
    plan: SoakPlan, db: SoakDatabase, dsn: str, venue: SoakVenue, ledger: Ledger, stop: asyncio.Event
) -> None:
    """The schedule: evenly spaced faults of each kind over the run, leaving the last 10% quiet."""
    span = plan.seconds * 0.9
    events: list[tuple[float, str]] = []
    for kind, n in (
        ("db", plan.db_restarts),
        ("drop", plan.venue_drops),
        ("stall", plan.stalls),
        ("flood", plan.floods),
    ):
        events += [((k + 0.5) * span / n, kind) for k in range(n)] if n else []
    events.sort()
    t0, drop_kinds = time.monotonic(), ["close", "reset", "silent"]
    for at, kind in events:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        if stop.is_set():
            return
        if kind == "db":
            await asyncio.to_thread(db.crash)
            await asyncio.sleep(random.uniform(1.0, 3.0))
            await asyncio.to_thread(db.start)
            ledger.db_restarts += 1
            ledger.fault_ends.append(("db_restart", time.time()))
            print(f"[{time.monotonic() - t0:6.1f}s] database crashed and restarted ({ledger.db_restarts})", flush=True)
        elif kind == "drop":
            how = drop_kinds[sum(ledger.venue_drops.values()) % 3]
            if await venue.call("drop", how):
                ledger.venue_drops[how] += 1
                ledger.fault_ends.append((f"venue_{how}", time.time()))
        elif kind == "stall":
            if await stall(dsn, 3.0):
                ledger.stalls += 1
                ledger.fault_ends.append(("db_stall", time.time()))
        else:
            ledger.malformed += await venue.call("malformed", 50)


async def reconcile(dsn: str, ledger: Ledger) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        stored_rows = await conn.fetch(
            "SELECT symbol, trade_id::bigint AS a, count(*) AS n FROM ops.raw_trades WHERE venue = $1 GROUP BY 1, 2",
            VENUE,
        )
        gaps = await conn.fetch("SELECT symbol, from_id, to_id FROM ops.feed_gaps WHERE venue = $1", VENUE)
        rejected = await conn.fetchval("SELECT count(*) FROM ops.rejected_messages WHERE venue = $1", VENUE)
    finally:
        await conn.close()
    stored = {(r["symbol"], r["a"]) for r in stored_rows}
    duplicates = sum(r["n"] - 1 for r in stored_rows)
    covered: dict[str, list[tuple[int, int]]] = {}
    for g in gaps:
        covered.setdefault(g["symbol"], []).append((g["from_id"], g["to_id"]))

    def in_gap(symbol: str, a: int) -> bool:
        return any(lo < a < hi for lo, hi in covered.get(symbol, ()))

    sent = {(s, a) for s, ids in ledger.sent.items() for a in ids}
    missing = sent - stored
    in_flight = sum(1 for s, a in missing if in_gap(s, a))
    # A skip is observable only if a later trade of that symbol reached the connector.
    observable = [(s, lo, hi) for s, lo, hi in ledger.skipped if max(ledger.sent.get(s, {0})) >= hi]
    unrecorded = [
        (s, lo, hi)
        for s, lo, hi in observable
        if not any(g_lo <= lo and g_hi >= hi for g_lo, g_hi in covered.get(s, ()))
    ]
    for s, lo, hi in unrecorded:
        near = sorted(g for g in covered.get(s, ()) if abs(g[0] - lo) < 50)
        print(
            f"skip not recorded as a gap: {s} ids {lo + 1}..{hi - 1}; gaps nearby {near}; "
            f"last sent {max(ledger.sent.get(s, {0}))}"
        )
    skips_recorded = len(observable) - len(unrecorded)
    return {
        "sent": len(sent),
        "stored": len(stored & sent),
        "unexpected": len(stored - sent),
        "duplicates": duplicates,
        "lost": len(missing) - in_flight,
        "in_flight_gap": in_flight,
        "skips": len(observable),
        "skips_recorded": skips_recorded,
        "malformed": ledger.malformed,
        "rejected": rejected,
        "gaps": len(gaps),
    }


async def run_soak(plan: SoakPlan) -> int:
    db = SoakDatabase(plan.port)
    print(
        f"soak: own TimescaleDB on 127.0.0.1:{plan.port} (data {ROOT}{DATA}); {plan.seconds:g} s at "
        f"{plan.rate:g} trades/s; {plan.db_restarts} database restarts, {plan.venue_drops} venue drops, "
        f"{plan.stalls} stalls, {plan.floods} malformed floods",
        flush=True,
    )
    await asyncio.to_thread(db.create)
    await asyncio.to_thread(db.start)
    admin = await asyncpg.connect(db.dsn)
    await admin.execute("CREATE DATABASE soak")
    await admin.close()
    dsn = db.dsn.rsplit("/", 1)[0] + "/soak"
    conn = await asyncpg.connect(dsn)
    await migrate(conn, log=lambda _: None)
    await conn.close()

    ledger = Ledger()
    spill = Path(tempfile.mkdtemp(prefix="tower-soak-"))
    writer = Writer(
        dsn,
        WriterConfig(memory_rows=20_000, spill_path=spill / "soak.jsonl", retry_cap_s=1.0),
        on_commit=ledger.on_commit,
    )
    symbols = [f"SOAK{i}USDT" for i in range(plan.symbols)]
    venue = await SoakVenue(symbols, plan.rate).start()  # its own process: it must not starve the connector
    adapter = SoakBinance(symbols, ws_url=venue.root, derivs=False)
    stop, ingest_stop = asyncio.Event(), asyncio.Event()
    await writer.start()
    # Trades-only connections get 10x the staleness allowance (quiet symbols): 0.5 s -> 5 s here.
    config = RuntimeConfig(stale_after_s=0.5, backoff_initial_s=0.2, backoff_cap_s=2.0)
    ingest = asyncio.create_task(run_venue(adapter, writer, config, ingest_stop))
    started = time.monotonic()
    try:
        if not await venue.call("wait_subscribed", f"{symbols[0].lower()}@aggTrade", 10.0):
            raise RuntimeError("the connector did not subscribe to the soak venue within 10 s")
        await venue.call("publish", True)
        started = time.monotonic()
        schedule = asyncio.create_task(faults(plan, db, dsn, venue, ledger, stop))
        await asyncio.sleep(plan.seconds)
        stop.set()
        await venue.call("publish", False)
        with contextlib.suppress(asyncio.CancelledError):
            await schedule
        ledger.sent, ledger.skipped, ledger.connected_s = await venue.call("ledger")
        # Let the last rows land: everything delivered and not lost in flight is committed.
        deadline = time.monotonic() + 60
        while writer.pending_rows or writer.queued_groups() or writer.spill_bytes():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
    finally:
        ingest_stop.set()
        await ingest
        fully = await writer.close()
        venue.stop()
    figures = await reconcile(dsn, ledger)
    await asyncio.to_thread(db.stop, True)
    shutil.rmtree(spill, ignore_errors=True)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    max_recovery = max((r for _, r in ledger.recoveries), default=0.0)
    worst: dict[str, float] = {}
    for kind, r in ledger.recoveries:
        worst[kind] = max(worst.get(kind, 0.0), r)
    drops = sum(ledger.venue_drops.values())
    elapsed = time.monotonic() - started
    print(
        f"ran {elapsed:.0f} s; {figures['sent'] / plan.seconds:,.0f} trades/s delivered over the run, "
        f"{figures['sent'] / max(ledger.connected_s, 1e-9):,.0f} trades/s while a connection was subscribed "
        f"({ledger.connected_s:.0f} s of {plan.seconds:g} s; the rest is faults and reconnects); "
        f"writer fully flushed: {fully}"
    )
    print(
        f"trades delivered by the venue: {figures['sent']:,}; stored: {figures['stored']:,}; "
        f"duplicates: {figures['duplicates']}; not stored but inside a recorded gap (in flight at a reset): "
        f"{figures['in_flight_gap']}; lost: {figures['lost']}; stored but never sent: {figures['unexpected']}"
    )
    print(
        f"deliberate id skips followed by a delivered trade: {figures['skips']}, recorded as gaps: "
        f"{figures['skips_recorded']}; "
        f"gaps recorded in all: {figures['gaps']}"
    )
    print(f"malformed frames delivered: {figures['malformed']}, quarantined: {figures['rejected']}")
    print(
        f"faults: {ledger.db_restarts} database restarts, {drops} venue drops {ledger.venue_drops}, "
        f"{ledger.stalls} stalls; recoveries measured: {len(ledger.recoveries)}, max {max_recovery:.2f} s; "
        "worst by fault: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(worst.items()))
    )
    print(f"peak RSS {peak_rss_mb:.0f} MB (bound {plan.memory_mb:g} MB)")
    print(
        f"RESULT sent={figures['sent']} stored={figures['stored']} duplicates={figures['duplicates']} "
        f"lost={figures['lost']} db_restarts={ledger.db_restarts} venue_drops={drops} "
        f"max_recovery_s={max_recovery:.2f} peak_rss_mb={peak_rss_mb:.0f}"
    )
    ok = (
        figures["lost"] == 0
        and figures["duplicates"] == 0
        and figures["unexpected"] == 0
        and figures["skips_recorded"] == figures["skips"]
        and figures["rejected"] == figures["malformed"]
        and peak_rss_mb <= plan.memory_mb
    )
    return 0 if ok else 1
