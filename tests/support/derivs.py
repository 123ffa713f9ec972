"""Derivatives context for tests: mark/index/funding/OI rows and forced orders for every test instrument."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.support.fixtures import DERIVS_COLUMNS, LIQUIDATION_COLUMNS, T0
from tests.support.market import INSTRUMENTS

M = timedelta(minutes=1)
FUNDING_INTERVAL = {"binance": timedelta(hours=8), "hyperliquid": timedelta(hours=1)}
# (venue, symbol, minute) -> (basis bps, funding per 8 h in bps), or None for "no derivs data that minute"
DerivsShape = Callable[[str, str, int], tuple[float, float] | None]


def calm(venue: str, symbol: str, minute: int) -> tuple[float, float] | None:
    return 1.0, 1.0


async def write_derivs(
    conn,
    minutes: int,
    shape: DerivsShape = calm,
    liquidations: list[tuple[str, str, int, str, float]] = (),
    *,
    every_s: int = 5,
) -> None:
    """Mark/index/funding/OI every `every_s` s for every instrument, as the venue reports it (Binance's
    funding per 8 h, Hyperliquid's per hour), and forced orders (venue, symbol, minute, side, notional)."""
    rows = []
    for venue, symbol, index in INSTRUMENTS:
        interval = FUNDING_INTERVAL[venue]
        for minute in range(minutes):
            got = shape(venue, symbol, minute)
            if got is None:
                continue
            basis_bps, funding_8h_bps = got
            for second in range(0, 60, every_s):
                ts = T0 + timedelta(minutes=minute, seconds=second)
                rows.append(
                    (
                        venue,
                        symbol,
                        ts,
                        ts,
                        index * (1 + basis_bps / 1e4),
                        index,
                        funding_8h_bps / 1e4 * (interval / timedelta(hours=8)),
                        interval,
                        T0 + interval,
                        1_000.0 + minute,
                    )
                )
    await conn.copy_records_to_table("raw_derivs", schema_name="ops", records=rows, columns=DERIVS_COLUMNS)
    await write_liquidations(conn, liquidations)


async def write_liquidations(conn, liquidations: list[tuple[str, str, int, str, float]]) -> None:
    price = {(v, s): px for v, s, px in INSTRUMENTS}
    liqs = [
        (
            venue,
            symbol,
            T0 + minute * M + timedelta(seconds=7 + k),
            T0 + minute * M + timedelta(seconds=8 + k),
            side,
            price[(venue, symbol)],
            notional / price[(venue, symbol)],
        )
        for k, (venue, symbol, minute, side, notional) in enumerate(liquidations)
    ]
    await conn.copy_records_to_table("raw_liquidations", schema_name="ops", records=liqs, columns=LIQUIDATION_COLUMNS)
