"""Silences (ops.silences): which silence, if any, mutes an event at a data minute.

A silence matches an event when every matcher it sets (rule, venue, symbol, asset) equals the event's;
unset matchers match anything. Silences are compared with the data minute evaluated, so a replay
treats them exactly as the live pass did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

ACTIVE_SQL = (
    "SELECT id, rule, venue, symbol, asset FROM ops.silences WHERE starts_at <= $1 AND ends_at > $1 ORDER BY id"
)


@dataclass(frozen=True)
class Silence:
    id: int
    rule: str | None = None
    venue: str | None = None
    symbol: str | None = None
    asset: str | None = None

    def matches(self, rule: str, venue: str, symbol: str, asset: str | None) -> bool:
        wanted = {"rule": rule, "venue": venue, "symbol": symbol, "asset": asset}
        return all(getattr(self, k) is None or getattr(self, k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class Silencer:
    """The silences active at one data minute, and each market's asset."""

    silences: tuple[Silence, ...]
    assets: dict[tuple[str, str], str]

    def silenced_by(self, rule: str, venue: str, symbol: str) -> int | None:
        asset = self.assets.get((venue, symbol))
        return next((s.id for s in self.silences if s.matches(rule, venue, symbol, asset)), None)


async def silencer_at(conn: asyncpg.Connection, minute: datetime) -> Silencer:
    silences = tuple(Silence(**dict(r)) for r in await conn.fetch(ACTIVE_SQL, minute))
    rows = await conn.fetch("SELECT venue, symbol, asset FROM ops.instruments")
    return Silencer(silences, {(r["venue"], r["symbol"]): r["asset"] for r in rows})
