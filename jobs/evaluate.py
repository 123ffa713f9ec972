"""Evaluate the rules for one data minute: advance every market's events and queue notifications.

One transaction per minute moves the events, queues the notifications in ops.alert_outbox and moves
the 'risk' cursor, so a minute is evaluated exactly once however often passes run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

import asyncpg
import orjson

from jobs import history, pipeline
from jobs.lifecycle import Event, Step, step
from jobs.pipeline import PIPELINE_VENUE
from jobs.rules import Rule, RuleSet
from jobs.silences import Silencer, silencer_at
from jobs.sqlfiles import sql

CURSOR = "risk"
VENUE_WIDE = "*"


@dataclass
class MinuteReport:
    minute: datetime
    transitions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    notifications: int = 0


def venue_values(rows: Iterable[Mapping], stale_after_s: float) -> dict[str, dict[str, float]]:
    """Venue-wide metrics: stale_fraction = share of the venue's active symbols that are stale."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        stale = r["freshness_s"] is None or r["freshness_s"] > stale_after_s
        counts[r["venue"]][0] += int(stale)
        counts[r["venue"]][1] += 1
    return {venue: {"stale_fraction": s / n} for venue, (s, n) in counts.items()}


def describe(rule: Rule, event: Event) -> str:
    where = event.venue if event.symbol == VENUE_WIDE else f"{event.venue} {event.symbol}"
    value = f"|{rule.metric}|" if rule.absolute else rule.metric
    return (
        f"{event.rule} on {where}: {value} {_number(event.last_value)} "
        f"({'>=' if rule.direction == 'above' else '<='} {_number(event.threshold)}; "
        f"peak {_number(event.peak_value)})"
    )


def _number(value: float) -> str:
    """4 significant digits; amounts (e.g. liquidation notional) in full with separators, not as 2e+06."""
    return f"{value:,.0f}" if abs(value) >= 100_000 else f"{value:.4g}"


def payload(rule: Rule, event: Event, kind: str, minute: datetime, links: Links) -> dict:
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(event).items()}
    body.update(metric=rule.metric, description=rule.description)
    return {
        "kind": kind,
        "data_time": minute.isoformat(),
        "text": slack_text(kind, body),
        "event": body,
        "runbook_url": rule.runbook_url,
        "dashboard_url": links.dashboard(rule.dashboard),
    }


@dataclass(frozen=True)
class Links:
    """Where notifications point: the Metabase people open (its search finds the dashboard by name)."""

    metabase_url: str | None = None

    def dashboard(self, name: str) -> str | None:
        if not self.metabase_url:
            return None
        return f"{self.metabase_url.rstrip('/')}/search?q={quote(name)}"


def group_key(labels: tuple[str, ...], event: Event, asset: str | None) -> str:
    values = {"venue": event.venue, "rule": event.rule, "symbol": event.symbol, "asset": asset or "-"}
    return " ".join(values.get(label, event.severity) for label in labels)


def slack_text(kind: str, e: dict) -> str:
    icon = {
        "firing": ":rotating_light:",
        "escalated": ":fire:",
        "resolved": ":white_check_mark:",
        "reminder": ":bell:",
        "acknowledged": ":eyes:",
    }[kind]
    return f"{icon} [{e['severity'].upper()}] {kind}: {e['message']} (event {e['id']}, since {e['opened_at']})"


Advance = Callable[
    [str, Rule, Event | None, str, str, float | None, str | None], Awaitable[Event | None]
]  # (rule name, rule, open event, venue, symbol, value, inhibitor) -> the event after the minute


async def walk_markets(
    rules: RuleSet,
    rows: Sequence[Mapping],
    open_events: dict[tuple[str, str, str], Event],
    advance: Advance,
    incomplete: frozenset[tuple[str, str]] = frozenset(),
) -> None:
    """Step every market of one minute's scores (and every open event) through the venue and symbol rules.

    Shared by the live pass (which stores each step) and the backtest (which keeps them in memory).
    Venue-wide rules first: their state decides what the per-symbol rules are inhibited by. A pending
    source already inhibits, so symbol rules faster than it cannot slip out a storm of alerts first;
    if the source is cancelled, its targets are announced on the next minute. A market whose minute is
    `incomplete` (an open gap or thin coverage) is skipped by every rule without fire_on_incomplete: its
    events neither advance nor clear on a minute that cannot be trusted.
    """
    active: dict[tuple[str, str], bool] = {}
    venues = venue_values(rows, rules.scoring.stale_after_s)
    for name, rule in rules.enabled("venue").items():
        markets = set(venues) | {v for (r, v, _s) in open_events if r == name}
        for venue in sorted(markets):
            value = venues.get(venue, {}).get(rule.metric)
            result = await advance(
                name, rule, open_events.get((name, venue, VENUE_WIDE)), venue, VENUE_WIDE, value, None
            )
            active[(name, venue)] = result is not None and result.open

    by_market = {(r["venue"], r["symbol"]): r for r in rows}
    for name, rule in rules.enabled("symbol").items():
        markets = set(by_market) | {(v, s) for (r, v, s) in open_events if r == name}
        for venue, symbol in sorted(markets):
            if (venue, symbol) in incomplete and not rule.fire_on_incomplete:
                continue
            row = by_market.get((venue, symbol))
            value = row[rule.metric] if row is not None else None
            inhibitor = next((f"{src} {venue}" for src in rule.inhibited_by if active.get((src, venue))), None)
            await advance(name, rule, open_events.get((name, venue, symbol)), venue, symbol, value, inhibitor)


def step_with(
    rules: RuleSet,
    name: str,
    rule: Rule,
    event: Event | None,
    venue: str,
    symbol: str,
    minute: datetime,
    value: float | None,
    inhibitor: str | None,
    silenced_by: int | None = None,
) -> Step:
    """One lifecycle step with the rule set's notification settings."""
    return step(
        name,
        rule,
        event,
        venue,
        symbol,
        minute,
        value,
        inhibitor,
        repeat=timedelta(minutes=rules.repeat_minutes(rule)),
        send_resolved=rules.notify.send_resolved,
        silenced_by=silenced_by,
    )


@dataclass
class _Minute:
    """What every market's step in one minute's evaluation shares."""

    conn: asyncpg.Connection
    rules: RuleSet
    minute: datetime
    sinks: list[str]
    links: Links
    silencer: Silencer
    report: MinuteReport


async def evaluate_minute(
    conn: asyncpg.Connection,
    minute: datetime,
    rules: RuleSet,
    sinks: Iterable[str],
    links: Links = Links(),
    job_failures: dict[str, float] | None = None,
) -> MinuteReport:
    """Evaluate `minute` (its scores must exist). Call inside a transaction.

    `job_failures` (jobs/pipeline.py) is the pipeline's job state now; None leaves job_failed rules
    untouched this minute (a catch-up's older minutes: that state was not observed then).
    """
    report = MinuteReport(minute)
    ctx = _Minute(conn, rules, minute, list(sinks), links, await silencer_at(conn, minute), report)
    rows = await conn.fetch(sql("minute_scores"), minute)
    open_events = {(r["rule"], r["venue"], r["symbol"]): event_of(r) for r in await conn.fetch(sql("open_events"))}

    incomplete = frozenset((r["venue"], r["symbol"]) for r in await conn.fetch(sql("incomplete_markets"), minute))

    async def advance(name, rule, event, venue, symbol, value, inhibitor):
        event = await _advance(ctx, name, rule, event, venue, symbol, value, inhibitor)
        if (venue, symbol) in incomplete and event is not None and event.id and event.last_seen == minute:
            await conn.execute("UPDATE ops.risk_events SET incomplete_at = $2 WHERE id = $1", event.id, minute)
        return event

    await walk_markets(rules, rows, open_events, advance, incomplete)

    pipeline_values = {"ingest_backlog": await pipeline.ingest_backlog(conn, minute)}
    if job_failures is not None:
        pipeline_values["job_failed"] = job_failures
    for name, rule in rules.enabled("pipeline").items():
        values = pipeline_values.get(rule.metric)
        if values is None:
            continue
        names = set(values) | {s for (r, v, s) in open_events if r == name and v == PIPELINE_VENUE}
        for what in sorted(names):
            event = open_events.get((name, PIPELINE_VENUE, what))
            await _advance(ctx, name, rule, event, PIPELINE_VENUE, what, values.get(what))

    await _close_orphans(conn, rules, open_events.values(), minute, report)
    await conn.execute(
        "INSERT INTO ops.job_cursors (name, position) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        CURSOR,
        minute,
    )
    return report


async def _advance(
    ctx: _Minute,
    name: str,
    rule: Rule,
    event: Event | None,
    venue: str,
    symbol: str,
    value: float | None,
    inhibitor: str | None = None,
) -> Event | None:
    conn, rules, minute = ctx.conn, ctx.rules, ctx.minute
    silence = ctx.silencer.silenced_by(name, venue, symbol)
    result = step_with(rules, name, rule, event, venue, symbol, minute, value, inhibitor, silence)
    if result.event is None or not result.changed:
        return result.event
    new = result.event
    new = Event(**{**asdict(new), "message": describe(rule, new)})
    if new.id is None:
        new_id = await conn.fetchval(
            sql("insert_event"),
            new.venue,
            new.symbol,
            new.rule,
            new.severity,
            new.state,
            new.opened_at,
            new.fired_at,
            new.resolved_at,
            new.first_seen,
            new.last_seen,
            new.peak_value,
            new.last_value,
            new.threshold,
            new.inhibited_by,
            new.message,
            new.last_notified_at,
            new.silenced_by,
        )
        new = Event(**{**asdict(new), "id": new_id})
    else:
        await conn.execute(
            sql("update_event"),
            new.id,
            new.severity,
            new.state,
            new.fired_at,
            new.resolved_at,
            new.last_seen,
            new.peak_value,
            new.last_value,
            new.inhibited_by,
            new.message,
            new.last_notified_at,
            new.silenced_by,
        )
    reason = history.why(rule, event, new)
    if reason is not None:
        old_state = event.state if event is not None and event.open else None
        await history.record(conn, new.id, old_state, new.state, new.severity, minute, reason)
    if event is None or event.state != new.state:
        ctx.report.transitions[new.state] += 1
    if result.notify:
        await queue(conn, ctx, rule, new, result.notify)
    return new


async def queue(conn: asyncpg.Connection, ctx: _Minute, rule: Rule, event: Event, kind: str) -> None:
    asset = ctx.silencer.assets.get((event.venue, event.symbol))
    ctx.report.notifications += await queue_notification(
        conn, ctx.rules, rule, event, kind, ctx.minute, ctx.sinks, ctx.links, asset
    )


async def queue_notification(
    conn: asyncpg.Connection,
    rules: RuleSet,
    rule: Rule,
    event: Event,
    kind: str,
    minute: datetime,
    sinks: Iterable[str],
    links: Links,
    asset: str | None,
) -> int:
    """One outbox row per sink (rows of one group are sent together, jobs/notify.py); returns how many."""
    body = orjson.dumps(payload(rule, event, kind, minute, links)).decode()
    key = group_key(rules.notify.group_by, event, asset)
    n = 0
    for sink in sinks:
        await conn.execute(
            "INSERT INTO ops.alert_outbox (event_id, sink, kind, data_time, payload, group_key) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            event.id,
            sink,
            kind,
            minute,
            body,
            key,
        )
        n += 1
    return n


async def _close_orphans(
    conn: asyncpg.Connection, rules: RuleSet, events: Iterable[Event], minute: datetime, report: MinuteReport
) -> None:
    """Open events of rules since disabled or removed from the rules file: resolved, not left open forever."""
    enabled = set(rules.enabled("venue")) | set(rules.enabled("symbol")) | set(rules.enabled("pipeline"))
    for event in events:
        if event.rule not in enabled:
            await conn.execute(
                "UPDATE ops.risk_events SET state = 'resolved', resolved_at = $2, updated_at = now(), "
                "message = coalesce(message, '') || ' (rule disabled or removed)' WHERE id = $1",
                event.id,
                minute,
            )
            await history.record(
                conn, event.id, event.state, "resolved", event.severity, minute, "rule disabled or removed"
            )
            report.transitions["resolved"] += 1


def event_of(r: asyncpg.Record) -> Event:
    return Event(**{k: r[k] for k in Event.__dataclass_fields__})
