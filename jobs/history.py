"""ops.risk_event_transitions: why an event changed, written in the transaction of the change."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from jobs.lifecycle import Event
from jobs.rules import Rule

INSERT_SQL = (
    "INSERT INTO ops.risk_event_transitions (event_id, from_state, to_state, severity, data_time, why) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)


def why(rule: Rule, old: Event | None, new: Event) -> str | None:
    """The reason for the change from `old` to `new`, or None if neither state nor severity moved."""
    if old is None or not old.open:
        return "condition holds" if new.state == "pending" else f"condition holds (for_minutes = {rule.for_minutes})"
    if old.state != new.state:
        return {
            "firing": f"held for {rule.for_minutes} min",
            "resolved": f"clear for {rule.clear_minutes} min",
            "cancelled": "cleared before firing",
        }.get(new.state, new.state)
    if old.severity != new.severity:
        return f"escalated {old.severity} -> {new.severity}"
    return None


async def record(
    conn: asyncpg.Connection,
    event_id: int,
    from_state: str | None,
    to_state: str,
    severity: str,
    data_time: datetime | None,
    reason: str,
) -> None:
    await conn.execute(INSERT_SQL, event_id, from_state, to_state, severity, data_time, reason)
