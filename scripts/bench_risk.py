"""Benchmark: how long a risk pass takes (scoring + evaluation) at a given quote rate.

Creates a scratch database on TOWER_BENCH_DSN (a server DSN whose role may CREATE DATABASE), migrates
it, writes synthetic L1 quotes and trades (and full-book depth samples, `--depth-per-s`) for every
active instrument, then times
  * a live pass: the one minute that just closed (what `tower jobs` does every minute),
  * a catch-up pass over the whole period (what a start after downtime does).
Prints the figures; the scratch database is dropped at the end.

    TOWER_BENCH_DSN=postgresql://postgres@127.0.0.1:55432/postgres .venv/bin/python scripts/bench_risk.py \
        --minutes 90 --updates-per-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.passes import risk_pass
from jobs.rules import load_rules
from jobs.settings import JobsSettings
from tests.support import tsdb
from tests.support.depth import DEPTH_COLUMNS, Depth, sample
from tower.cagg_refresh import refresh_feature_caggs
from tower.migrate import migrate

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def write(conn: asyncpg.Connection, minutes: int, per_s: int, depth_per_s: int) -> int:
    # Seeded instruments are inactive until their first data (migration 0700): activate them as ingest would.
    await conn.execute("UPDATE ops.instruments SET active = true, deactivated_at = NULL, deactivated_by = NULL")
    instruments = await conn.fetch("SELECT venue, symbol FROM ops.instruments WHERE active ORDER BY 1, 2")
    total = 0
    for i, inst in enumerate(instruments):
        mid = 100.0 * (i + 1)
        book, trades = [], []
        for k in range(minutes * 60 * per_s):
            ts = T0 + timedelta(seconds=k / per_s)
            half = mid * (1 + (k % 7) / 10) / 2e4
            book.append(
                (
                    inst["venue"],
                    inst["symbol"],
                    ts,
                    ts + timedelta(milliseconds=30),
                    mid - half,
                    2.0,
                    mid + half,
                    2.0,
                    k,
                )
            )
            if k % per_s == 0:
                trades.append((inst["venue"], inst["symbol"], ts, ts, str(k), mid, 0.1, "buy" if k % 2 else "sell"))
        await conn.copy_records_to_table(
            "raw_book_l1",
            schema_name="ops",
            records=book,
            columns=["venue", "symbol", "ts", "recv_ts", "bid_px", "bid_qty", "ask_px", "ask_qty", "update_id"],
        )
        await conn.copy_records_to_table(
            "raw_trades",
            schema_name="ops",
            records=trades,
            columns=["venue", "symbol", "ts", "recv_ts", "trade_id", "price", "qty", "side"],
        )
        depth = [
            sample(inst["venue"], inst["symbol"], T0 + timedelta(seconds=k / depth_per_s), mid, Depth(2e6, 0.5))
            for k in range(minutes * 60 * depth_per_s)
        ]
        await conn.copy_records_to_table("raw_book_depth", schema_name="ops", records=depth, columns=DEPTH_COLUMNS)
        total += len(book) + len(trades) + len(depth)
    return total


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=90)
    ap.add_argument("--updates-per-s", type=int, default=20, help="L1 updates per second per instrument")
    ap.add_argument("--depth-per-s", type=int, default=1, help="depth samples per second per instrument (0: none)")
    args = ap.parse_args()
    server = os.environ.get("TOWER_BENCH_DSN") or os.environ.get("TOWER_TEST_DSN")
    if not server:
        sys.exit("set TOWER_BENCH_DSN to a server DSN whose role may CREATE DATABASE")
    name = f"tower_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = tsdb.with_database(server, name)
    try:
        conn = await asyncpg.connect(dsn)
        await migrate(conn, log=lambda _: None)
        license = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
        rows = await write(conn, args.minutes, args.updates_per_s, args.depth_per_s)
        await conn.execute("UPDATE ops.policy_settings SET retention = NULL")
        t = time.perf_counter()
        await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=args.minutes))
        refresh_s = time.perf_counter() - t
        n_inst = await conn.fetchval("SELECT count(*) FROM ops.instruments WHERE active")
        await conn.close()

        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        rules = load_rules()
        settings = JobsSettings(jobs_settle_s=0, jobs_catchup=timedelta(minutes=args.minutes + 1))
        end = T0 + timedelta(minutes=args.minutes)
        t = time.perf_counter()
        catch = await risk_pass(pool, rules, settings, end - timedelta(minutes=1))  # all but the last minute
        catch_s = time.perf_counter() - t
        t = time.perf_counter()
        live = await risk_pass(pool, rules, settings, end)  # the minute that just closed
        live_s = time.perf_counter() - t
        await pool.close()
        print(
            f"license={license} instruments={n_inst} minutes={args.minutes} "
            f"updates/s/instrument={args.updates_per_s} depth samples/s/instrument={args.depth_per_s} raw rows={rows:,}"
        )
        if refresh_s > 0.01:
            print(f"feature refresh (TSL caggs, whole period): {refresh_s:.2f} s")
        print(
            f"catch-up pass: {catch.minutes} minutes x {n_inst} instruments in {catch_s:.2f} s "
            f"({catch_s / max(catch.minutes, 1) * 1000:.1f} ms/minute)"
        )
        print(f"live pass (1 minute): {live.minutes} minute in {live_s * 1000:.0f} ms")
    finally:
        await tsdb.drop(server, name)


if __name__ == "__main__":
    asyncio.run(main())
