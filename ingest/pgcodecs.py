"""A cheaper timestamptz codec for the writer's connection.

asyncpg's own binary encoder spends ~1 µs per datetime (an astimezone, a timedelta and a comparison with
infinity each time): with two per row it was half the client CPU of the COPY. Here a datetime becomes its
microseconds since PostgreSQL's epoch (asyncpg's `tuple` format) with plain integer arithmetic, and the two
most recent answers are kept: rows of one TCP read share their `recv_ts`, and venue times repeat within a
millisecond, so most values are the previous ones again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)


class _TimestampEncoder:
    __slots__ = ("a", "a_value", "b", "b_value")

    def __init__(self) -> None:
        self.a = self.b = None
        self.a_value = self.b_value = (0,)

    def __call__(self, dt: datetime) -> tuple[int]:
        if dt is self.a:
            return self.a_value
        if dt is self.b:
            return self.b_value
        if dt.tzinfo is None:  # as asyncpg does: a naive datetime is taken as UTC
            dt = dt.replace(tzinfo=UTC)
        d = dt - PG_EPOCH
        value = ((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds,)
        self.b, self.b_value = self.a, self.a_value  # the older answer goes, the newer stays
        self.a, self.a_value = dt, value
        return value


def _decode(value: tuple[int]) -> datetime:
    try:
        return PG_EPOCH + timedelta(microseconds=value[0])
    except OverflowError:  # 'infinity' / '-infinity'
        return _MAX if value[0] > 0 else _MIN


async def use_fast_timestamps(conn: asyncpg.Connection) -> None:
    """Installs the codec on one connection (each has its own encoder and its cache)."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_TimestampEncoder(), decoder=_decode, format="tuple"
    )
