"""Scripted markets for the risk tests: quiet quotes and trades for every instrument, with overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.fixtures import T0, insert_book, insert_trades

INSTRUMENTS = [("binance", "BTCUSDT", 50_000.0), ("binance", "ETHUSDT", 3_000.0), ("binance", "SOLUSDT", 150.0),
               ("hyperliquid", "BTC", 50_000.0), ("hyperliquid", "ETH", 3_000.0), ("hyperliquid", "SOL", 150.0)]
MS = timedelta(milliseconds=1)


@dataclass
class Quote:
    mid: float
    spread_bps: float
    qty: float = 5.0


# (venue, symbol, minute) -> Quote, or None for "no data this minute"
Shape = Callable[[str, str, int, Quote], Quote | None]


def quiet(venue: str, symbol: str, minute: int, q: Quote) -> Quote | None:
    return q


def quote_at(base_mid: float, minute: int, second: int) -> Quote:
    # Deterministic wiggle so the spread baseline varies from minute to minute (about 1.0 .. 1.5 bps).
    wiggle = ((minute * 3) % 5) / 10 + ((second // 2) % 3) / 20
    return Quote(mid=base_mid, spread_bps=1.0 + wiggle)


async def write_market(conn, minutes: int, shape: Shape = quiet, *, start: datetime = T0, every_s: int = 2,
                       latency_ms: float = 40.0) -> None:
    """Book updates every `every_s` seconds and a trade every 10 s for every instrument, for `minutes`."""
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
                book.append((venue, symbol, ts, ts + latency_ms * MS, q.mid - half, q.qty, q.mid + half, q.qty,
                             uid))
                if second % 10 == 0:
                    side = "buy" if (minute + second // 10) % 2 else "sell"
                    trades.append((venue, symbol, ts, ts + latency_ms * MS, f"{minute}-{second}", q.mid, 0.1, side))
    await insert_book(conn, book)
    await insert_trades(conn, trades)
