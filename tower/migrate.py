"""The migration runner: applies db/migrations and db/caggs in order and records what it applied.

Files from both folders form one sequence ordered by their numeric prefix. A file in db/caggs/
that starts with `-- continuous: schema.name` holds only a SELECT: under the TSL license it becomes
a real-time continuous aggregate, under Apache a plain view with the same name and columns.
Every other file is plain SQL run in one transaction. Applied files are immutable: a changed
checksum is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

DB_DIR = Path(__file__).resolve().parent.parent / "db"
SQL_DIRS = ("migrations", "caggs")
_CONTINUOUS = re.compile(r"^--\s*continuous:\s*([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_LOCK_KEY = 0x70657270  # advisory lock: one migrate at a time per database

TSL, APACHE = "timescale", "apache"


class MigrationError(Exception):
    """A migration cannot be applied; the message says which file and why."""


@dataclass(frozen=True)
class SqlFile:
    name: str          # e.g. caggs/0100_book_1m.sql
    order: int
    body: str
    checksum: str
    continuous: str | None  # relation name for a continuous-aggregate file

    @property
    def kind(self) -> str:
        return "continuous" if self.continuous else "sql"


def discover(root: Path = DB_DIR) -> list[SqlFile]:
    files = []
    for folder in SQL_DIRS:
        for path in sorted((root / folder).glob("*.sql")):
            prefix = path.name.split("_", 1)[0]
            if not prefix.isdigit():
                raise MigrationError(f"{folder}/{path.name}: file names must start with a number, e.g. 0300_name.sql")
            body = path.read_text()
            match = _CONTINUOUS.search(body)
            files.append(SqlFile(
                name=f"{folder}/{path.name}",
                order=int(prefix),
                body=body,
                checksum=hashlib.sha256(body.encode()).hexdigest(),
                continuous=match.group(1) if match else None,
            ))
    files.sort(key=lambda f: (f.order, f.name))
    seen: dict[int, str] = {}
    for f in files:
        if f.order in seen:
            raise MigrationError(f"{f.name} and {seen[f.order]} share the number {f.order}; renumber one")
        seen[f.order] = f.name
    return files


@dataclass
class MigrateReport:
    mode: str
    applied: list[str]
    unchanged: int
    policies: list[asyncpg.Record]


def continuous_sql(f: SqlFile, mode: str) -> str:
    """The DDL for a continuous-aggregate file under the given license."""
    select = f.body.strip().rstrip(";")
    if mode == TSL:
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {f.continuous} "
            "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
            f"{select}\nWITH NO DATA"
        )
    return f"CREATE OR REPLACE VIEW {f.continuous} AS\n{select}"


async def migrate(
    conn: asyncpg.Connection,
    files: list[SqlFile] | None = None,
    *,
    readonly_password: str | None = None,
    log: Callable[[str], None] = print,
) -> MigrateReport:
    files = discover() if files is None else files
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        mode = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
        if mode not in (TSL, APACHE):
            raise MigrationError(f"unexpected timescaledb.license {mode!r}")
        log(f"mode: {describe_mode(mode)}")
        await conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS ops.schema_migrations (
                   name text PRIMARY KEY, checksum text NOT NULL, kind text NOT NULL,
                   relation text, mode text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {r["name"]: r for r in await conn.fetch("SELECT name, checksum, mode FROM ops.schema_migrations")}
        _check_unchanged(files, applied)
        report = MigrateReport(mode=mode, applied=[], unchanged=0, policies=[])
        for f in files:
            if f.name in applied:
                report.unchanged += 1
                if f.continuous and applied[f.name]["mode"] != mode:
                    log(f"warning: {f.continuous} was created under the {applied[f.name]['mode']} license "
                        f"but the server now runs {mode}; recreate the database to switch modes")
                continue
            await _apply(conn, f, mode)
            report.applied.append(f.name)
            log(f"applied {f.name}" + (f" ({'continuous aggregate' if mode == TSL else 'plain view'} "
                                         f"{f.continuous})" if f.continuous else ""))
        await _grant_readonly(conn, readonly_password)
        async with conn.transaction():
            report.policies = await conn.fetch("SELECT * FROM ops.apply_policies()")
        changed = [p for p in report.policies if p["action"] in ("added", "replaced", "removed")]
        for p in changed:
            log(f"policy {p['relation']} {p['policy']}: {p['action']} ({p['detail']})")
        if mode == APACHE:
            log("compression skipped: needs the TimescaleDB community (TSL) build; "
                "retention runs from `tower jobs` via ops.enforce_retention()")
        log(f"done: {len(report.applied)} applied, {report.unchanged} already applied, "
            f"{len(changed)} policies changed")
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def describe_mode(mode: str) -> str:
    if mode == TSL:
        return "timescale (TSL): continuous aggregates, compression and retention as TimescaleDB jobs"
    return ("apache: continuous aggregates become plain views (computed live), no compression, "
            "retention via `tower jobs`")


def _check_unchanged(files: list[SqlFile], applied: dict[str, asyncpg.Record]) -> None:
    for f in files:
        row = applied.get(f.name)
        if row is not None and row["checksum"] != f.checksum:
            raise MigrationError(
                f"{f.name} was changed after it was applied (recorded checksum {row['checksum'][:12]}, "
                f"file now {f.checksum[:12]}). Applied migrations are immutable: revert the edit and put "
                "the change in a new, higher-numbered file."
            )


async def _apply(conn: asyncpg.Connection, f: SqlFile, mode: str) -> None:
    record = "INSERT INTO ops.schema_migrations (name, checksum, kind, relation, mode) VALUES ($1, $2, $3, $4, $5)"
    try:
        if f.continuous and mode == TSL:
            # Continuous aggregates cannot be created inside a transaction block.
            await conn.execute(continuous_sql(f, mode))
            await conn.execute(record, f.name, f.checksum, f.kind, f.continuous, mode)
            return
        sql = continuous_sql(f, mode) if f.continuous else f.body
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(record, f.name, f.checksum, f.kind, f.continuous, mode)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{f.name} failed: {exc.__class__.__name__}: {exc}") from exc


async def _grant_readonly(conn: asyncpg.Connection, password: str | None) -> None:
    """Re-grant on every run (new views included) and set the dashboards' login from the environment."""
    await conn.execute("GRANT USAGE ON SCHEMA ops TO tower_readonly")
    await conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA ops TO tower_readonly")
    if password:
        # %L quotes the password server-side; it never passes through string formatting here.
        stmt = await conn.fetchval("SELECT format('ALTER ROLE tower_readonly WITH LOGIN PASSWORD %L', $1::text)",
                                   password)
        await conn.execute(stmt)
