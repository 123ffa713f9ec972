"""Running a card's SQL outside Metabase (tests, the HTML report), with Metabase's parameter rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from metabase import template
from metabase.spec import Card, Dashboard


@dataclass
class CardResult:
    columns: list[str]
    rows: list[tuple]

    def column(self, name: str) -> list[object]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


def effective_values(dashboard: Dashboard, values: Mapping[str, object]) -> dict[str, object]:
    """Filter values as Metabase would send them: given ones, else the dashboard filter's default."""
    merged = dashboard.defaults()
    merged.update({k: v for k, v in values.items() if v is not None and v != ""})
    return merged


async def run_card(
    conn: asyncpg.Connection, dashboard: Dashboard, card: Card, values: Mapping[str, object] | None = None
) -> CardResult:
    """Run one card in a read-only transaction: the cards only read, whoever connects."""
    sql, args = template.substitute(card.sql, effective_values(dashboard, values or {}), dashboard.tag_kinds())
    async with conn.transaction(readonly=True):
        stmt = await conn.prepare(sql)
        records = await stmt.fetch(*args)
        columns = [a.name for a in stmt.get_attributes()]
    return CardResult(columns=columns, rows=[tuple(r) for r in records])
