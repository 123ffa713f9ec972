"""The risk event lifecycle for one rule and one market, one data minute at a time (no I/O).

    (none) --holds--> pending --held for_minutes--> firing --clear for clear_minutes--> resolved
                         \\--clear before firing--> cancelled

Severity only rises while an event is open (escalation). Notifications go out on firing, escalation,
resolution and as reminders, unless the event is inhibited (its venue's feed is down) or silenced (a
matching ops.silences row; then not even its resolution is sent); an event whose inhibition or silence
lifts while firing is announced then. An acknowledged event sends no reminders, but still escalations
and its resolution. `minute` is a bucket start (data time).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from jobs.rules import SEVERITIES, Rule

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Event:
    rule: str
    venue: str
    symbol: str
    severity: str
    state: str
    opened_at: datetime
    first_seen: datetime
    last_seen: datetime
    peak_value: float
    last_value: float
    threshold: float
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    inhibited_by: str | None = None
    last_notified_at: datetime | None = None
    message: str | None = None
    id: int | None = None
    silenced_by: int | None = None
    acked_at: datetime | None = None

    @property
    def muted(self) -> bool:
        return bool(self.inhibited_by or self.silenced_by)

    @property
    def open(self) -> bool:
        return self.state in ("pending", "firing")


@dataclass(frozen=True)
class Step:
    event: Event | None  # the event after this minute (None: nothing open and nothing happened)
    notify: str | None = None  # firing | escalated | resolved | reminder
    changed: bool = False


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def _peak(rule: Rule, old: float, new: float) -> float:
    a, b = (abs(old), abs(new)) if rule.absolute else (old, new)
    if rule.direction == "above":
        return old if a >= b else new
    return old if a <= b else new


def step(
    name: str,
    rule: Rule,
    event: Event | None,
    venue: str,
    symbol: str,
    minute: datetime,
    value: float | None,
    inhibited_by: str | None,
    repeat: timedelta,
    send_resolved: bool = True,
    silenced_by: int | None = None,
) -> Step:
    """Advance one market's event for `rule` by one data minute."""
    severity = rule.severity_of(value)
    if event is None or not event.open:
        if severity is None:
            return Step(None)
        assert value is not None
        new = Event(
            rule=name,
            venue=venue,
            symbol=symbol,
            severity=severity,
            state="pending",
            opened_at=minute,
            first_seen=minute,
            last_seen=minute,
            peak_value=value,
            last_value=value,
            threshold=rule.first_threshold(),
            inhibited_by=inhibited_by,
            silenced_by=silenced_by,
        )
        return _maybe_fire(rule, new, minute)

    if event.state == "pending":
        if severity is None:
            return Step(
                replace(
                    event,
                    state="cancelled",
                    inhibited_by=inhibited_by or event.inhibited_by,
                    silenced_by=silenced_by or event.silenced_by,
                ),
                changed=True,
            )
        assert value is not None
        held = replace(
            event,
            last_seen=minute,
            last_value=value,
            peak_value=_peak(rule, event.peak_value, value),
            severity=max(event.severity, severity, key=rank),
            inhibited_by=inhibited_by,
            silenced_by=silenced_by,
        )
        return _maybe_fire(rule, held, minute)

    # firing
    if rule.still_active(value):
        assert value is not None
        escalated = severity is not None and rank(severity) > rank(event.severity)
        updated = replace(
            event,
            last_seen=minute,
            last_value=value,
            peak_value=_peak(rule, event.peak_value, value),
            severity=severity if escalated else event.severity,
        )
    else:
        if minute - event.last_seen >= rule.clear_minutes * MINUTE:
            resolved = replace(event, state="resolved", resolved_at=minute, silenced_by=silenced_by)
            announce = send_resolved and event.last_notified_at is not None and silenced_by is None
            return Step(resolved, notify="resolved" if announce else None, changed=True)
        escalated = False
        updated = event
    return _while_firing(replace(updated, silenced_by=silenced_by), minute, escalated, inhibited_by, repeat)


def _maybe_fire(rule: Rule, event: Event, minute: datetime) -> Step:
    held_minutes = (minute - event.opened_at) // MINUTE + 1
    if held_minutes < rule.for_minutes:
        return Step(event, changed=True)
    fired = replace(event, state="firing", fired_at=minute)
    if fired.muted:
        return Step(fired, changed=True)
    return Step(replace(fired, last_notified_at=minute), notify="firing", changed=True)


def _while_firing(event: Event, minute: datetime, escalated: bool, inhibited_by: str | None, repeat: timedelta) -> Step:
    if inhibited_by or event.silenced_by:
        return Step(replace(event, inhibited_by=inhibited_by), changed=True)
    if event.last_notified_at is None:
        # Inhibited or silenced until now: announce it as it stands.
        return Step(replace(event, inhibited_by=None, last_notified_at=minute), notify="firing", changed=True)
    event = replace(event, inhibited_by=None)
    if escalated:
        return Step(replace(event, last_notified_at=minute), notify="escalated", changed=True)
    if event.acked_at is None and minute - event.last_notified_at >= repeat:
        return Step(replace(event, last_notified_at=minute), notify="reminder", changed=True)
    return Step(event, changed=True)
