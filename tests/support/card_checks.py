"""What every dashboard card must satisfy against real data; used by test_dashboard_sql.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from metabase.runner import CardResult, run_card
from metabase.spec import Card, Dashboard

NO_MATCH = "no-such-value"


class CardCheckError(AssertionError):
    pass


async def run_as_readonly(
    conn: asyncpg.Connection, dashboard: Dashboard, card: Card, values: dict | None = None
) -> CardResult:
    """Run the card with the privileges Metabase has: the tower_readonly role."""
    await conn.execute("SET ROLE tower_readonly")
    try:
        return await run_card(conn, dashboard, card, values)
    except asyncpg.PostgresError as exc:
        raise CardCheckError(
            f"{dashboard.key}/{card.key} failed with {values or 'defaults'}: {exc.__class__.__name__}: {exc}"
        ) from exc
    finally:
        await conn.execute("RESET ROLE")


async def check_card(
    conn: asyncpg.Connection, dashboard: Dashboard, card: Card, filter_values: dict[str, str], now: datetime
) -> CardResult:
    """Runs the card with defaults and with each filter; raises CardCheckError on the first problem."""
    where = f"{dashboard.key}/{card.key}"
    result = await run_as_readonly(conn, dashboard, card)
    missing = [c for c in card.required_columns() if c not in result.columns]
    if missing:
        raise CardCheckError(f"{where}: its visualization needs columns {missing}, the SQL returns {result.columns}")
    if not result.rows:
        raise CardCheckError(f"{where}: no rows on the fixture with default filters")

    for tag in card.tags:
        if tag not in filter_values:
            continue
        value = filter_values[tag]
        narrowed = await run_as_readonly(conn, dashboard, card, {tag: value})
        if not narrowed.rows:
            raise CardCheckError(f"{where}: no rows with {tag}={value!r}")
        if tag in narrowed.columns:
            allowed = {value, "*"} if tag == "symbol" else {value}  # '*' = venue-wide event
            others = {v for v in narrowed.column(tag) if v not in allowed}
            if others:
                raise CardCheckError(f"{where}: with {tag}={value!r} it still returns {tag} {sorted(others)}")
        nothing = await run_as_readonly(conn, dashboard, card, {tag: NO_MATCH})
        if nothing.rows and not _only_venue_wide(tag, nothing, result):
            raise CardCheckError(f"{where}: {tag}={NO_MATCH!r} matches nothing, yet the card returns rows")

    if "hours" in card.tags:
        dims = card.visualization_settings.get("graph.dimensions", [])
        if card.visualization_settings.get("graph.x_axis.scale") == "timeseries" and dims:
            recent = await run_as_readonly(conn, dashboard, card, {"hours": 0.25})
            oldest = min(recent.column(dims[0]), default=None)
            # Bucketed times start up to one bucket before the window.
            if oldest is not None and oldest < now - timedelta(minutes=15 + 30):
                raise CardCheckError(f"{where}: hours=0.25 still returns {dims[0]} {oldest}")
    return result


def _only_venue_wide(tag: str, narrowed: CardResult, everything: CardResult) -> bool:
    """Risk events with symbol '*' concern every symbol of their venue, so they survive a symbol filter."""
    if tag != "symbol":
        return False
    if "symbol" in narrowed.columns:
        return set(narrowed.column("symbol")) == {"*"}
    return _weight(narrowed) < _weight(everything)


def _weight(result: CardResult) -> float:
    return sum(abs(v) for row in result.rows for v in row if isinstance(v, int | float))
