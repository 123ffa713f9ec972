"""Scripted markets for the risk tests: quiet quotes and trades for every instrument, with overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.support.fixtures import T0, activate, insert_book, insert_trades

INSTRUMENTS = [
    ("binance", "BTCUSDT", 50_000.0),
    ("binance", "ETHUSDT", 3_000.0),
    ("binance", "SOLUSDT", 150.0),
    ("hyperliquid", "BTC", 50_000.0),
    ("hyperliquid", "ETH", 3_000.0),
    ("hyperliquid", "SOL", 150.0),
]
MS = timedelta(milliseconds=1)


@dataclass
class Quote:
    mid: float
    spread_bps: float
    qty: float = 5.0


async def quiesce_background_jobs(conn) -> None:
    """Under TSL, stop this database's policy jobs and wait for running ones to end.

    A freshly cloned test database gets its compression, retention and refresh jobs started by the
    TimescaleDB scheduler within seconds. The fixture data lies at a fixed past time, so those jobs
    compress, drop or re-materialize exactly the chunks a test is writing and refreshing; racing
    them leaves caggs with missing minutes now and then. Tests call tower.cagg_refresh.refresh_feature_caggs instead.
    """
    if await conn.fetchval("SELECT current_setting('timescaledb.license', true)") != "timescale":
        return
    await conn.execute(
        "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE job_id >= 1000"
    )
    # Quiet = no job worker in this database for five checks in a row (one may just be starting).
    await conn.execute(r"""
        DO $$
        DECLARE quiet integer := 0;
        BEGIN
            FOR i IN 1..400 LOOP
                IF EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE datname = current_database() AND backend_type ~ '\[[0-9]+\]$') THEN
                    quiet := 0;
                ELSE
                    quiet := quiet + 1;
                END IF;
                EXIT WHEN quiet >= 5;
                PERFORM pg_sleep(0.05);
            END LOOP;
        END $$""")


# (venue, symbol, minute) -> Quote, or None for "no data this minute"
Shape = Callable[[str, str, int, Quote], Quote | None]


def quiet(venue: str, symbol: str, minute: int, q: Quote) -> Quote | None:
    return q


def quote_at(base_mid: float, minute: int, second: int) -> Quote:
    # Deterministic wiggle so the spread baseline varies from minute to minute (about 1.0 .. 1.5 bps).
    wiggle = ((minute * 3) % 5) / 10 + ((second // 2) % 3) / 20
    return Quote(mid=base_mid, spread_bps=1.0 + wiggle)


async def write_market(
    conn, minutes: int, shape: Shape = quiet, *, start: datetime = T0, every_s: int = 2, latency_ms: float = 40.0
) -> None:
    """Book updates every `every_s` seconds and a trade every 10 s for every instrument, for `minutes`."""
    await quiesce_background_jobs(conn)
    book, trades = [], []
    for venue, symbol, base in INSTRUMENTS:
        uid = 0
        for minute in range(minutes):
            for second in range(0, 60, every_s):
                q = shape(venue, symbol, minute, quote_at(base, minute, second))
                if q is None:
                    continue
                ts = start + timedelta(minutes=minute, seconds=second)
                half = q.mid * q.spread_bps / 2e4
                uid += 1
                book.append((venue, symbol, ts, ts + latency_ms * MS, q.mid - half, q.qty, q.mid + half, q.qty, uid))
                if second % 10 == 0:
                    side = "buy" if (minute + second // 10) % 2 else "sell"
                    trades.append((venue, symbol, ts, ts + latency_ms * MS, f"{minute}-{second}", q.mid, 0.1, side))
    await insert_book(conn, book)
    await insert_trades(conn, trades)
    await activate(conn, [(venue, symbol) for venue, symbol, _ in INSTRUMENTS])
