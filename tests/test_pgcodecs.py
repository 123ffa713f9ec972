"""The writer's timestamptz codec stores exactly the instant asyncpg's own codec would, in the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg

from ingest.pgcodecs import use_fast_timestamps

INSTANTS = [
    datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 11, 25, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),  # the same instant
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before PostgreSQL's epoch
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
]


async def test_copied_times_read_back_equal_through_either_codec(db_dsn, conn):
    fast = await asyncpg.connect(db_dsn)
    try:
        await use_fast_timestamps(fast)
        await fast.execute("CREATE TABLE codec_check (n int, at timestamptz, again timestamptz)")
        # the same object twice in a row and in alternation: what the encoder's memory of answers sees
        records = [(n, t, t) for n, t in enumerate(INSTANTS)] + [(9, INSTANTS[0], INSTANTS[2])]
        await fast.copy_records_to_table("codec_check", records=records)
        stored = await conn.fetch("SELECT n, at, again FROM codec_check ORDER BY n")  # asyncpg's own codec
        assert [tuple(r) for r in stored] == records
        assert await fast.fetchval("SELECT at FROM codec_check WHERE n = 2") == INSTANTS[2]
        assert await fast.fetchval("SELECT 'infinity'::timestamptz") == datetime.max.replace(tzinfo=UTC)
        naive = datetime(2026, 1, 2, 3, 4, 5)
        assert await fast.fetchval("SELECT $1::timestamptz", naive) == naive.replace(tzinfo=UTC)
    finally:
        await fast.close()
