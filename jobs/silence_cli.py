"""`tower silence add|list|expire` and `tower events ack`: muting and owning alerts from the command line."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime, timedelta

from jobs.acks import acknowledge
from jobs.evaluate import Links
from jobs.rules import load_rules
from jobs.settings import JobsSettings
from tower.settings import load
from tower.table import render

MATCHERS = ("rule", "venue", "symbol", "asset")


def register(sub: argparse._SubParsersAction, duration, timestamp) -> None:
    p = sub.add_parser("silence", help="mute notifications of matching risk events for a while")
    verbs = p.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="add a silence; prints its id")
    for m in MATCHERS:
        add.add_argument(f"--{m}", help=f"only events of this {m} (default: any)")
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="for_", metavar="DURATION", type=duration, help="how long, from now, e.g. 2h")
    until.add_argument("--until", metavar="TS", type=timestamp, help="end time (UTC), e.g. 2026-01-05T18:00:00Z")
    add.add_argument("--comment", required=True, help="why (shown in tower silence list)")
    add.add_argument("--by", default=None, help="who (default: the OS user)")
    add.set_defaults(run=run_add)
    lst = verbs.add_parser("list", help="active and upcoming silences, then those ended within --since")
    lst.add_argument("--since", type=duration, default=timedelta(hours=24))
    lst.set_defaults(run=run_list)
    exp = verbs.add_parser("expire", help="end a silence now")
    exp.add_argument("id", type=int)
    exp.set_defaults(run=run_expire)


def register_ack(events: argparse.ArgumentParser) -> None:
    verbs = events.add_subparsers(dest="verb")
    ack = verbs.add_parser("ack", help="acknowledge an open event: no more reminders (escalations still go out)")
    ack.add_argument("id", type=int)
    ack.add_argument("--by", default=None, help="who (default: the OS user)")
    ack.add_argument("--comment")
    ack.set_defaults(run=run_ack)


def _who(by: str | None) -> str:
    return by or getpass.getuser()


async def run_add(args: argparse.Namespace) -> int:
    from tower.db import connect

    now = datetime.now(UTC)
    ends = now + args.for_ if args.for_ is not None else args.until
    if ends <= now:
        raise ValueError(f"--until {ends.isoformat()} is in the past: a silence must end in the future")
    if not args.comment.strip():
        raise ValueError("--comment must say why")
    conn = await connect()
    try:
        silence_id = await conn.fetchval(
            "INSERT INTO ops.silences (rule, venue, symbol, asset, starts_at, ends_at, created_by, comment) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            *(getattr(args, m) for m in MATCHERS),
            now,
            ends,
            _who(args.by),
            args.comment,
        )
    finally:
        await conn.close()
    print(silence_id)
    return 0


async def run_list(args: argparse.Namespace) -> int:
    from tower.db import connect

    conn = await connect()
    try:
        rows = await conn.fetch(
            "SELECT *, (starts_at <= now() AND ends_at > now()) AS active FROM ops.silences "
            "WHERE ends_at > now() - $1::interval ORDER BY ends_at > now() DESC, ends_at DESC, id DESC",
            args.since,
        )
    finally:
        await conn.close()
    if not rows:
        print("no silences")
        return 0
    print(
        render(
            ["id", "active", *MATCHERS, "starts", "ends", "by", "comment"],
            [
                [
                    r["id"],
                    "yes" if r["active"] else "no",
                    *(r[m] or "*" for m in MATCHERS),
                    r["starts_at"],
                    r["ends_at"],
                    r["created_by"],
                    r["comment"],
                ]
                for r in rows
            ],
        )
    )
    return 0


async def run_expire(args: argparse.Namespace) -> int:
    from tower.db import connect

    conn = await connect()
    try:
        ended = await conn.fetchval(
            "UPDATE ops.silences SET ends_at = greatest(now(), starts_at + interval '1 microsecond') "
            "WHERE id = $1 AND ends_at > now() RETURNING ends_at",
            args.id,
        )
        exists = ended is not None or await conn.fetchval("SELECT true FROM ops.silences WHERE id = $1", args.id)
    finally:
        await conn.close()
    if not exists:
        raise ValueError(f"no silence {args.id} (see tower silence list)")
    print(f"silence {args.id} expired" if ended else f"silence {args.id} had already ended")
    return 0


async def run_ack(args: argparse.Namespace) -> int:
    from tower.db import connect

    settings = load(JobsSettings)
    rules = load_rules(settings.rules_file)
    conn = await connect()
    try:
        queued = await acknowledge(
            conn,
            args.id,
            _who(args.by),
            args.comment,
            rules,
            list(settings.sinks()),
            Links(settings.metabase_public_url),
        )
    finally:
        await conn.close()
    print(f"event {args.id} acknowledged" + (f"; {queued} notification(s) queued" if queued else ""))
    return 0
