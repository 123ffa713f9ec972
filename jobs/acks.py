"""Acknowledging an event (`tower events ack`): no more reminders; escalations and the resolution still go out.

The acknowledgement is recorded on the event and in its history, and sent to the sinks (PagerDuty:
action acknowledge) if the event had been announced, all in one transaction.
"""

from __future__ import annotations

import asyncpg

from jobs import history
from jobs.evaluate import Links, event_of, queue_notification
from jobs.rules import RuleSet
from jobs.sqlfiles import sql

ACK_SQL = """
UPDATE ops.risk_events SET acked_at = now(), acked_by = $2, ack_comment = $3, updated_at = now()
WHERE id = $1 AND state IN ('pending', 'firing') AND acked_at IS NULL
RETURNING id
"""


class AckError(ValueError):
    """The event cannot be acknowledged; the message says why."""


async def acknowledge(
    conn: asyncpg.Connection,
    event_id: int,
    by: str,
    comment: str | None,
    rules: RuleSet,
    sinks: list[str],
    links: Links,
) -> int:
    """Acknowledge an open event; returns the number of notifications queued."""
    async with conn.transaction():
        row = await conn.fetchrow(sql("open_events") + " AND id = $1 FOR UPDATE", event_id)
        if row is None:
            state = await conn.fetchval("SELECT state FROM ops.risk_events WHERE id = $1", event_id)
            raise AckError(
                f"no risk event {event_id}" if state is None else f"event {event_id} is {state}: only open events"
            )
        if await conn.fetchval(ACK_SQL, event_id, by, comment) is None:
            raise AckError(f"event {event_id} is already acknowledged")
        event = event_of(row)
        why = f"acknowledged by {by}" + (f": {comment}" if comment else "")
        await history.record(conn, event_id, event.state, event.state, event.severity, None, why)
        rule = rules.rules.get(event.rule)
        if rule is None or event.last_notified_at is None or event.muted:
            return 0  # never announced, or muted now (inhibited, silenced): nothing to send
        asset = await conn.fetchval(
            "SELECT asset FROM ops.instruments WHERE venue = $1 AND symbol = $2", event.venue, event.symbol
        )
        return await queue_notification(conn, rules, rule, event, "acknowledged", event.last_seen, sinks, links, asset)
