"""Refreshing the feature caggs (1-minute, then 1-hour) after late or backfilled data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

# Lower levels first: the hourly caggs are built from the minute ones.
FEATURE_CAGGS = (
    ("ops.book_1m", timedelta(minutes=1)),
    ("ops.trades_1m", timedelta(minutes=1)),
    ("ops.derivs_1m", timedelta(minutes=1)),
    ("ops.liquidations_1m", timedelta(minutes=1)),
    ("ops.depth_1m", timedelta(minutes=1)),
    ("ops.book_1h", timedelta(hours=1)),
    ("ops.trades_1h", timedelta(hours=1)),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def widen(start: datetime, end: datetime, width: timedelta) -> tuple[datetime, datetime]:
    """The smallest bucket-aligned window covering [start, end): a refresh must span whole buckets."""
    lo = _EPOCH + ((start - _EPOCH) // width) * width
    hi = _EPOCH + -((_EPOCH - end) // width) * width
    return lo, max(hi, lo + width)


async def refresh_feature_caggs(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[str]:
    """Re-materialize [start, end) of every feature cagg; returns what was refreshed.

    Under TSL the refresh policy only looks back `refresh_start_offset`, so data older than that
    (a replay, a backfill) needs this. Under Apache the features are plain views, always current.
    Each CALL commits on its own: it cannot run inside a transaction block.
    """
    if await conn.fetchval("SELECT current_setting('timescaledb.license', true)") != "timescale":
        return []
    done = []
    for cagg, width in FEATURE_CAGGS:
        # A database not yet migrated to a later aggregate (ops.depth_1m came with issue 14) has its older ones.
        if await conn.fetchval("SELECT to_regclass($1) IS NULL", cagg):
            continue
        lo, hi = widen(start, end, width)
        # cagg comes from the fixed tuple above, never from input.
        await conn.execute(f"CALL refresh_continuous_aggregate('{cagg}', $1::timestamptz, $2::timestamptz)", lo, hi)
        done.append(cagg)
    return done
