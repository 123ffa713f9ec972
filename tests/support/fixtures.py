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


async def activate(conn: asyncpg.Connection, instruments: list[tuple[str, str]]) -> None:
    """What ingest does when an instrument's first data is stored, for tests that write rows directly."""
    await conn.execute(
        "UPDATE ops.instruments i SET active = true, first_data_at = now(), deactivated_at = NULL, "
        "deactivated_by = NULL FROM unnest($1::text[], $2::text[]) AS d (venue, symbol) "
        "WHERE i.venue = d.venue AND i.symbol = d.symbol",
        [v for v, _ in instruments],
        [s for _, s in instruments],
    )
