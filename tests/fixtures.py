"""Rows for tests, written through the same COPY path the writer uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a fixed past minute: far outside any refresh window

TRADE_COLUMNS = ["venue", "symbol", "ts", "recv_ts", "trade_id", "price", "qty", "side"]
BOOK_COLUMNS = ["venue", "symbol", "ts", "recv_ts", "bid_px", "bid_qty", "ask_px", "ask_qty", "update_id"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def insert_book(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.copy_records_to_table("raw_book_l1", schema_name="ops", records=rows, columns=BOOK_COLUMNS)


async def insert_trades(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.copy_records_to_table("raw_trades", schema_name="ops", records=rows, columns=TRADE_COLUMNS)
