"""Retention, compression and refresh policies: read and change ops.policy_settings.

The settings table is the single source of truth under both licenses; ops.apply_policies()
makes TimescaleDB's jobs match it (TSL) or reports the Apache-mode equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

# CLI flag -> ops.policy_settings column. Column names are fixed here, never taken from input.
SETTABLE = {
    "retention": "retention",
    "compress_after": "compress_after",
    "refresh_every": "refresh_every",
    "refresh_start_offset": "refresh_start_offset",
    "refresh_end_offset": "refresh_end_offset",
}
CAGG_ONLY = {"refresh_every", "refresh_start_offset", "refresh_end_offset"}


class PolicyError(Exception):
    """A policy change was refused; the message says why."""


@dataclass(frozen=True)
class PolicyRow:
    relation: str
    kind: str
    retention: timedelta | None
    compress_after: timedelta | None
    refresh_every: timedelta | None
    refresh_start_offset: timedelta | None
    refresh_end_offset: timedelta | None
    jobs: str


async def show(conn: asyncpg.Connection) -> list[PolicyRow]:
    settings = await conn.fetch("SELECT * FROM ops.policy_settings ORDER BY kind DESC, relation")
    tsl = await conn.fetchval("SELECT current_setting('timescaledb.license', true) = 'timescale'")
    jobs: dict[str, list[str]] = {}
    if tsl:
        for r in await conn.fetch(
            "SELECT relation, job_id, policy, last_run_status FROM ops.policy_jobs ORDER BY job_id"
        ):
            jobs.setdefault(r["relation"], []).append(
                f"{r['policy']}#{r['job_id']}:{r['last_run_status'] or 'not run'}"
            )
    rows = []
    for s in settings:
        if tsl:
            where = ", ".join(jobs.get(s["relation"], [])) or "no jobs"
        elif s["kind"] == "cagg":
            where = "plain view (apache): computed live"
        else:
            where = "retention by tower jobs (drop_chunks); no compression (apache)"
        rows.append(
            PolicyRow(
                relation=s["relation"],
                kind=s["kind"],
                retention=s["retention"],
                compress_after=s["compress_after"],
                refresh_every=s["refresh_every"],
                refresh_start_offset=s["refresh_start_offset"],
                refresh_end_offset=s["refresh_end_offset"],
                jobs=where,
            )
        )
    return rows


async def set_policy(
    conn: asyncpg.Connection, relation: str, changes: dict[str, timedelta | None]
) -> list[asyncpg.Record]:
    """Change settings for one relation and apply them, all or nothing."""
    if not changes:
        raise PolicyError("nothing to change: give --retention, --compress-after or --refresh-every")
    unknown = set(changes) - set(SETTABLE)
    if unknown:
        raise PolicyError(f"unknown policy setting(s): {', '.join(sorted(unknown))}")
    relation = relation if "." in relation else f"ops.{relation}"
    async with conn.transaction():
        row = await conn.fetchrow("SELECT kind FROM ops.policy_settings WHERE relation = $1", relation)
        if row is None:
            known = await conn.fetch("SELECT relation FROM ops.policy_settings ORDER BY relation")
            raise PolicyError(f"unknown relation {relation!r}; known: {', '.join(r['relation'] for r in known)}")
        if row["kind"] != "cagg" and CAGG_ONLY & set(changes):
            raise PolicyError(f"{relation} is a hypertable: refresh settings apply to continuous aggregates only")
        for key, value in changes.items():
            # The column comes from the fixed SETTABLE map; the value is a bind parameter.
            await conn.execute(
                f"UPDATE ops.policy_settings SET {SETTABLE[key]} = $2, updated_at = now() WHERE relation = $1",
                relation,
                value,
            )
        try:
            return await conn.fetch("SELECT * FROM ops.apply_policies($1)", relation)
        except asyncpg.RaiseError as exc:
            raise PolicyError(str(exc)) from None
