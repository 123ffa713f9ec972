"""Feed health per venue/symbol, for `tower status`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

STATUS_SQL = (Path(__file__).parent / "sql" / "status.sql").read_text()


@dataclass(frozen=True)
class FeedStatus:
    venue: str
    symbol: str
    last_age_s: float | None
    derivs_age_s: float | None  # mark/index/funding/open interest: a feed of its own on most venues
    msgs_per_min: float
    reconnects_today: int
    open_gaps: int
    rejected_today: int
    complete_24h_pct: float  # closed minutes of the last 24 h since the market's first data that were complete, %
    conflated_today: int  # L1 book updates not stored today because the writer was overloaded (conflation)
    paused_today_s: float  # seconds today the venue's readers stopped reading (writer full: TCP backpressure)
    depth_age_s: float | None  # last order-book depth sample; None: the market has none (no full book)


async def feed_status(conn: asyncpg.Connection) -> list[FeedStatus]:
    return [FeedStatus(**dict(r)) for r in await conn.fetch(STATUS_SQL)]


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
