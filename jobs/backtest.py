"""`tower rules backtest`: replay scoring and evaluation over stored data, in memory.

Scores come from the stored market data (the features) as a first live pass computes them, minute by
minute through the same lifecycle and the same market walk as the live pass (jobs/evaluate.py), but
every event stays in memory: live scores, events, outbox and deliveries are never touched, and the
same data gives the same output. Silences, acknowledgements and pipeline rules are left out: they
change what is sent, not what the market did.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from jobs.evaluate import step_with, walk_markets
from jobs.lifecycle import Event
from jobs.metric_names import STORED_METRICS
from jobs.passes import CHUNK, MINUTE, first_data_minute
from jobs.rules import Rule, RuleSet
from jobs.scoring import fetch_metric_rows, score_row
from jobs.sqlfiles import sql

FLAP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class RuleSummary:
    events: int  # opened (pending at least)
    fired: int
    firing_minutes: int  # minutes from firing to resolution (or the end of the period)
    flaps: int  # firings of a market within an hour of its previous event of the rule resolving
    median_minutes_to_fire: float | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


async def simulate(conn: asyncpg.Connection, rules: RuleSet, start: datetime, end: datetime) -> list[Event]:
    """Every event the rules would have produced over [start, end), in the order they opened."""
    first = await first_data_minute(conn, start, end)
    events: list[Event] = []
    if first is None:
        return events
    open_events: dict[tuple[str, str, str], Event] = {}
    chunk_start = first
    while chunk_start < end:
        chunk_end = min(chunk_start + CHUNK, end)
        by_minute: dict[datetime, list[dict]] = {}
        for r in await fetch_metric_rows(conn, chunk_start, chunk_end, rules.scoring):
            s = score_row(r, rules.scoring)
            by_minute.setdefault(s.bucket, []).append(
                {"venue": s.venue, "symbol": s.symbol, "score": s.score, **{k: s.stored[k] for k in STORED_METRICS}}
            )
        minute = chunk_start
        while minute < chunk_end:
            rows = sorted(by_minute.get(minute, []), key=lambda r: (r["venue"], r["symbol"]))
            incomplete = frozenset(
                (r["venue"], r["symbol"]) for r in await conn.fetch(sql("incomplete_markets"), minute)
            )
            await walk_markets(
                rules, rows, dict(open_events), _advancer(rules, minute, open_events, events), incomplete
            )
            minute += MINUTE
        chunk_start = chunk_end
    return events


def _advancer(rules: RuleSet, minute: datetime, open_events: dict, events: list[Event]):
    async def advance(name, rule, event, venue, symbol, value, inhibitor):
        result = step_with(rules, name, rule, event, venue, symbol, minute, value, inhibitor)
        new = result.event
        if new is None or not result.changed:
            return new
        if new.id is None:
            new = replace(new, id=len(events))
            events.append(new)
        events[new.id] = new
        key = (name, venue, symbol)
        if new.open:
            open_events[key] = new
        else:
            open_events.pop(key, None)
        return new

    return advance


def summarize(rules: RuleSet, events: list[Event], end: datetime) -> dict[str, RuleSummary]:
    out = {}
    for name, rule in sorted(rules.rules.items()):
        if rule.scope == "pipeline" or not rule.enabled:
            continue
        mine = [e for e in events if e.rule == name]
        out[name] = _summary(rule, mine, end)
    return out


def _summary(rule: Rule, events: list[Event], end: datetime) -> RuleSummary:
    fired = [e for e in events if e.fired_at is not None]
    firing_minutes = sum(((e.resolved_at or end) - e.fired_at) // MINUTE for e in fired)
    to_fire = [(e.fired_at - e.opened_at) / MINUTE for e in fired]
    flaps = 0
    last_resolved: dict[tuple[str, str], datetime] = {}
    for e in sorted(fired, key=lambda e: e.fired_at):
        market = (e.venue, e.symbol)
        if market in last_resolved and e.fired_at - last_resolved[market] <= FLAP_WINDOW:
            flaps += 1
        if e.resolved_at is not None:
            last_resolved[market] = e.resolved_at
    return RuleSummary(
        events=len(events),
        fired=len(fired),
        firing_minutes=firing_minutes,
        flaps=flaps,
        median_minutes_to_fire=statistics.median(to_fire) if to_fire else None,
    )


async def compare(
    conn: asyncpg.Connection, current: RuleSet, candidate: RuleSet, start: datetime, end: datetime
) -> dict[str, dict[str, RuleSummary | None]]:
    """Per rule: {"current": summary or None, "candidate": summary or None} (None: rule absent/disabled)."""
    now_rules = summarize(current, await simulate(conn, current, start, end), end)
    new_rules = summarize(candidate, await simulate(conn, candidate, start, end), end)
    return {
        n: {"current": now_rules.get(n), "candidate": new_rules.get(n)} for n in sorted(set(now_rules) | set(new_rules))
    }
