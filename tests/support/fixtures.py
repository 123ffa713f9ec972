"""Rows for tests, written through the same COPY path the writer uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.rows import COLUMNS

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a fixed past minute: far outside any refresh window

# Test rows are tuples in the writer's own column order (ingest.rows declares it once).
# Test trades are streamed ones: `source` is left to its default 'ws'.
TRADE_COLUMNS = tuple(c for c in COLUMNS["raw_trades"] if c != "source")
BOOK_COLUMNS = COLUMNS["raw_book_l1"]
DERIVS_COLUMNS = COLUMNS["raw_derivs"]
LIQUIDATION_COLUMNS = COLUMNS["raw_liquidations"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def insert_book(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.copy_records_to_table("raw_book_l1", schema_name="ops", records=rows, columns=BOOK_COLUMNS)


async def insert_trades(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.copy_records_to_table("raw_trades", schema_name="ops", records=rows, columns=TRADE_COLUMNS)
