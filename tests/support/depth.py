"""Order-book depth samples for tests, written straight into ops.raw_book_depth (what a venue's synced book
gives through the writer): a scripted +-25 bps depth and standard-order slippage per market and minute."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.rows import COLUMNS
from tests.support.fixtures import T0

DEPTH_COLUMNS = COLUMNS["raw_book_depth"]


@dataclass(frozen=True)
class Depth:
    within_25bps: float  # bid + ask quote notional within 25 bps of mid, split evenly between the sides
    slip_bps: float | None  # slippage of the standard order each way; None: the held book cannot fill it


# (venue, symbol, minute) -> Depth for every sample of that minute, or None for "no depth samples"
DepthShape = Callable[[str, str, int], Depth | None]


def sample(venue: str, symbol: str, ts: datetime, mid: float, d: Depth) -> tuple:
    """One ops.raw_book_depth record; the other bands are fixed multiples of the 25 bps one."""
    side = d.within_25bps / 2
    return (
        venue,
        symbol,
        ts,
        ts + timedelta(milliseconds=40),
        mid,
        side * 0.4,
        side * 0.4,
        side,
        side,
        side * 1.8,
        side * 1.8,
        side * 3,
        side * 3,
        d.slip_bps,
        d.slip_bps,
        150.0,
        200,
        200,
    )


async def write_depth(
    conn,
    markets: list[tuple[str, str, float]],
    minutes: int,
    shape: DepthShape,
    *,
    start: datetime = T0,
    every_s: int = 5,
) -> None:
    """A depth sample every `every_s` s for each (venue, symbol, mid), as `shape` scripts it."""
    rows = []
    for venue, symbol, mid in markets:
        for minute in range(minutes):
            d = shape(venue, symbol, minute)
            if d is None:
                continue
            for second in range(0, 60, every_s):
                ts = start + timedelta(minutes=minute, seconds=second)
                rows.append(sample(venue, symbol, ts, mid, d))
    await conn.copy_records_to_table("raw_book_depth", schema_name="ops", records=rows, columns=DEPTH_COLUMNS)
