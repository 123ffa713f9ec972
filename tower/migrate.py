"""The migration runner: applies db/migrations and db/caggs in order, then db/views, and records what it did.

Numbered files (db/migrations, db/caggs) form one sequence ordered by their numeric prefix. A file in
db/caggs/ that starts with `-- continuous: schema.name` holds only a SELECT: under the TSL license it
becomes a real-time continuous aggregate, under Apache a plain view with the same name and columns.
Every other numbered file is plain SQL run in one transaction. Numbered files are history, applied
once: a changed checksum is refused.

A file in db/views/ is the current definition of one plain view, `CREATE VIEW ops.<file name> AS ...`,
like Flyway's repeatable migrations: after the numbered files, every view whose file is new or changed,
or whose relation is missing, is dropped and created again together with the managed views that depend
on it, in one transaction, keeping the grants others had on it. Views that read other managed views
are created after them. A view that depends on a managed one but has no file (a user's own) stops the
run: dropping it silently would lose it. A numbered migration that must change what a view reads may
drop the view; the same run recreates it.

A view file named with `{grain}` (features_{grain}.sql) and holding a line `-- grains: 1m, 1h` is one
definition for several views: it is rendered once per grain, `{grain}` replaced in its name and body.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg

from tower.settings import READONLY_IDLE_TIMEOUT, READONLY_STATEMENT_TIMEOUT

DB_DIR = Path(__file__).resolve().parent.parent / "db"
SQL_DIRS = ("migrations", "caggs")
VIEW_DIR = "views"
_CONTINUOUS = re.compile(r"^--\s*continuous:\s*([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_GRAINS = re.compile(r"^--\s*grains:\s*(.*?)\s*$", re.MULTILINE)
_CREATE_VIEW = re.compile(r"^CREATE\s+VIEW\s+(\S+)\s+AS\b", re.MULTILINE | re.IGNORECASE)
_OPS_RELATION = re.compile(r"\bops\.([a-z_][a-z0-9_]*)")
_LOCK_KEY = 0x70657270  # advisory lock: one migrate at a time per database

TSL, APACHE = "timescale", "apache"
READONLY_ROLE = "tower_readonly"


class MigrationError(Exception):
    """A migration cannot be applied; the message says which file and why."""


@dataclass(frozen=True)
class SqlFile:
    name: str  # e.g. caggs/0100_book_1m.sql; a view rendered per grain: views/features_1m.sql
    order: int | None  # numbered files; None for views (applied after all numbered files)
    body: str
    checksum: str
    continuous: str | None  # relation name for a continuous-aggregate file
    view: str | None = None  # relation a views/ file defines
    source: str = ""  # the file on disk, when it differs from name (views/features_{grain}.sql)

    @property
    def kind(self) -> str:
        if self.view:
            return "view"
        return "continuous" if self.continuous else "sql"

    @property
    def label(self) -> str:
        return f"{self.source} for {self.view}" if self.source and self.source != self.name else self.name


def discover(root: Path = DB_DIR) -> list[SqlFile]:
    files = []
    for folder in SQL_DIRS:
        for path in sorted((root / folder).glob("*.sql")):
            prefix = path.name.split("_", 1)[0]
            if not prefix.isdigit():
                raise MigrationError(f"{folder}/{path.name}: file names must start with a number, e.g. 0300_name.sql")
            body = path.read_text()
            match = _CONTINUOUS.search(body)
            files.append(
                SqlFile(
                    name=f"{folder}/{path.name}",
                    order=int(prefix),
                    body=body,
                    checksum=_checksum(body),
                    continuous=match.group(1) if match else None,
                )
            )
    files.sort(key=lambda f: (f.order or 0, f.name))
    seen: dict[int, str] = {}
    for f in files:
        if f.order in seen:
            raise MigrationError(f"{f.name} and {seen[f.order]} share the number {f.order}; renumber one")
        seen[f.order] = f.name
    return files + _dependency_order(_discover_views(root))


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _discover_views(root: Path) -> list[SqlFile]:
    views = []
    for path in sorted((root / VIEW_DIR).glob("*.sql")):
        source, text = f"{VIEW_DIR}/{path.name}", path.read_text()
        renders = [(path.name, text)]
        if "{grain}" in path.name:
            header = _GRAINS.search(text)
            grains = [g.strip() for g in header.group(1).split(",")] if header else []
            if not grains or not all(re.fullmatch(r"[a-z0-9]+", g) for g in grains):
                raise MigrationError(
                    f"{source}: a file named with {{grain}} needs a line `-- grains: 1m, 1h` "
                    "(lower-case letters and digits)"
                )
            renders = [(path.name.replace("{grain}", g), text.replace("{grain}", g)) for g in grains]
        for name, body in renders:
            relation = f"ops.{name.removesuffix('.sql')}"
            if _CREATE_VIEW.findall(body) != [relation]:
                raise MigrationError(
                    f"{source}: must hold exactly one `CREATE VIEW {relation} AS ...` "
                    "(a view file is named after the view it defines)"
                )
            views.append(
                SqlFile(
                    name=f"{VIEW_DIR}/{name}",
                    order=None,
                    body=body,
                    checksum=_checksum(body),
                    continuous=None,
                    view=relation,
                    source=source,
                )
            )
    return views


def _dependency_order(views: list[SqlFile]) -> list[SqlFile]:
    """Views after the managed views they read (depth-first on `ops.<name>` outside comments)."""
    by_relation = {v.view: v for v in views}
    ordered: list[SqlFile] = []

    def visit(v: SqlFile, path: tuple[str | None, ...]) -> None:
        if v in ordered:
            return
        if v.view in path:
            raise MigrationError(f"views read each other in a cycle: {' -> '.join(map(str, (*path, v.view)))}")
        code = re.sub(r"--[^\n]*", "", v.body)
        for name in _OPS_RELATION.findall(code):
            dep = by_relation.get(f"ops.{name}")
            if dep is not None and dep is not v:
                visit(dep, (*path, v.view))
        ordered.append(v)

    for v in views:
        visit(v, ())
    return ordered


@dataclass
class MigrateReport:
    mode: str
    applied: list[str]  # numbered files applied by this run
    unchanged: int  # files (numbered and views) left as they were
    policies: list[asyncpg.Record]
    views: dict[str, str] = field(default_factory=dict)  # relation -> "created" | "replaced"


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
    readonly_statement_timeout: timedelta = READONLY_STATEMENT_TIMEOUT,
    readonly_idle_timeout: timedelta = READONLY_IDLE_TIMEOUT,
    log: Callable[[str], None] = print,
) -> MigrateReport:
    files = discover() if files is None else files
    await check_owner(conn)
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
        numbered = [f for f in files if f.view is None]
        views = [f for f in files if f.view is not None]
        _check_unchanged(numbered, applied)
        report = MigrateReport(mode=mode, applied=[], unchanged=0, policies=[])
        for f in numbered:
            if f.name in applied:
                report.unchanged += 1
                if f.continuous and applied[f.name]["mode"] != mode:
                    log(
                        f"warning: {f.continuous} was created under the {applied[f.name]['mode']} license "
                        f"but the server now runs {mode}; recreate the database to switch modes"
                    )
                continue
            await _apply(conn, f, mode)
            report.applied.append(f.name)
            log(
                f"applied {f.name}"
                + (
                    f" ({'continuous aggregate' if mode == TSL else 'plain view'} {f.continuous})"
                    if f.continuous
                    else ""
                )
            )
        report.views = await _apply_views(conn, views, applied, mode)
        report.unchanged += len(views) - len(report.views)
        for relation, action in report.views.items():
            log(f"view {relation}: {action}")
        await _grant_readonly(conn, readonly_password)
        await _limit_readonly(
            conn,
            {
                "statement_timeout": readonly_statement_timeout,
                "idle_in_transaction_session_timeout": readonly_idle_timeout,
            },
        )
        async with conn.transaction():
            report.policies = await conn.fetch("SELECT * FROM ops.apply_policies()")
        changed = [p for p in report.policies if p["action"] in ("added", "replaced", "removed")]
        for p in changed:
            log(f"policy {p['relation']} {p['policy']}: {p['action']} ({p['detail']})")
        if mode == APACHE:
            log(
                "compression skipped: needs the TimescaleDB community (TSL) build; "
                "retention runs from `tower jobs` via ops.enforce_retention()"
            )
        log(
            f"done: {len(report.applied)} applied, {report.unchanged} already applied, "
            f"{len(report.views)} views (re)created, {len(changed)} policies changed"
        )
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


# Who we are, and whether we own (or may act as the owner of) the ops schema, or may create it.
_OWNER_CHECK = """
SELECT current_user AS role, n.nspowner IS NOT NULL AS schema_exists,
       coalesce(pg_has_role(current_user, n.nspowner, 'USAGE'), has_database_privilege(current_database(), 'CREATE'))
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS may_migrate,
       coalesce(pg_get_userbyid(n.nspowner), '') AS owner
FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'ops'"""


async def check_owner(conn: asyncpg.Connection) -> None:
    """Refuse, before changing anything, a role that cannot own the schema (the dashboards' read-only one)."""
    row = await conn.fetchrow(_OWNER_CHECK)
    if row["role"] == READONLY_ROLE or not row["may_migrate"]:
        owner = f"the schema owner ({row['owner']})" if row["schema_exists"] else "the schema owner"
        what = "the dashboards' read-only role" if row["role"] == READONLY_ROLE else "a role that does not own ops"
        raise MigrationError(
            f"tower migrate needs {owner} or a role that may create schemas in this database; "
            f"TOWER_DSN connects as {row['role']}, {what}. Run it with the owner's DSN."
        )


def describe_mode(mode: str) -> str:
    if mode == TSL:
        return "timescale (TSL): continuous aggregates, compression and retention as TimescaleDB jobs"
    return (
        "apache: continuous aggregates become plain views (computed live), no compression, retention via `tower jobs`"
    )


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


# The given views and every view built on them, at any depth, found through their rewrite rules.
_DEPENDANTS = """
WITH RECURSIVE dependant(oid) AS (
    SELECT to_regclass(r)::oid FROM unnest($1::text[]) r
    UNION
    SELECT rw.ev_class
    FROM dependant d
    JOIN pg_depend dep ON dep.refclassid = 'pg_class'::regclass AND dep.refobjid = d.oid
                      AND dep.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite rw ON rw.oid = dep.objid AND rw.ev_class <> d.oid
)
SELECT format('%I.%I', n.nspname, c.relname) AS relation
FROM dependant d JOIN pg_class c ON c.oid = d.oid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1"""

# The grants others hold on a relation, as statements to run again after it is recreated.
_GRANTS = """
SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, r,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM unnest($1::text[]) r JOIN pg_class c ON c.oid = to_regclass(r), aclexplode(c.relacl) a
WHERE a.grantee <> c.relowner"""


async def _apply_views(
    conn: asyncpg.Connection, views: list[SqlFile], applied: dict[str, asyncpg.Record], mode: str
) -> dict[str, str]:
    """Create again, in one transaction, the views whose file is new or changed or whose relation is
    missing, with the managed views built on them; `views` is in dependency order."""
    present = set(
        await conn.fetchval(
            "SELECT coalesce(array_agg(r), '{}') FROM unnest($1::text[]) r WHERE to_regclass(r) IS NOT NULL",
            [v.view for v in views],
        )
    )
    stale = {
        v.view
        for v in views
        if v.view not in present or v.name not in applied or applied[v.name]["checksum"] != v.checksum
    }
    if not stale:
        return {}
    managed = {v.view: v for v in views}
    record = """INSERT INTO ops.schema_migrations (name, checksum, kind, relation, mode) VALUES ($1, $2, 'view', $3, $4)
                ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, relation = excluded.relation,
                                                 mode = excluded.mode, applied_at = now()"""
    async with conn.transaction():
        dependants = [r["relation"] for r in await conn.fetch(_DEPENDANTS, sorted(stale & present))]
        unmanaged = [d for d in dependants if d not in managed]
        if unmanaged:
            files = ", ".join(managed[name].label for name in sorted(stale))
            raise MigrationError(
                f"recreating the views of {files} would drop {', '.join(unmanaged)}: built on them, but with no "
                "file in db/views/. Nothing was changed. Save its definition (SELECT pg_get_viewdef(...)), drop "
                "it, run `tower migrate` and create it again; or add it to db/views/ so migrate recreates it."
            )
        todo = [v for v in views if v.view in stale or v.view in dependants]
        drop = [v.view for v in todo if v.view in present]
        grants = [r[0] for r in await conn.fetch(_GRANTS, drop)]
        current: SqlFile | None = None
        try:
            if drop:
                # One statement: views among the dropped set may depend on each other without CASCADE.
                await conn.execute(f"DROP VIEW {', '.join(drop)}")
            for current in todo:
                await conn.execute(current.body)
                await conn.execute(record, current.name, current.checksum, current.view, mode)
            current = None
            for grant in grants:
                await conn.execute(grant)
        except asyncpg.PostgresError as exc:
            what = current.label if current else f"dropping {', '.join(drop)}"
            detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
            raise MigrationError(
                f"{what} failed: {exc.__class__.__name__}: {exc}{detail}; the views were left as they were"
            ) from exc
    return {str(v.view): "replaced" if v.view in present else "created" for v in todo}


async def _grant_readonly(conn: asyncpg.Connection, password: str | None) -> None:
    """Re-grant on every run (new views included) and set the dashboards' login from the environment."""
    await conn.execute("GRANT USAGE ON SCHEMA ops TO tower_readonly")
    await conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA ops TO tower_readonly")
    if password:
        # %L quotes the password server-side; it never passes through string formatting here.
        stmt = await conn.fetchval(
            "SELECT format('ALTER ROLE tower_readonly WITH LOGIN PASSWORD %L', $1::text)", password
        )
        await conn.execute(stmt)


# tower_readonly's settings in the current database only (a shared server's other databases keep theirs).
_READONLY_SETTINGS = """
SELECT coalesce(s.setconfig, '{}') FROM pg_db_role_setting s
JOIN pg_database d ON d.oid = s.setdatabase AND d.datname = current_database()
JOIN pg_roles r ON r.oid = s.setrole AND r.rolname = 'tower_readonly'"""

_ALTER_READONLY = (
    "SELECT format('ALTER ROLE tower_readonly IN DATABASE %I SET %s = %L', current_database(), $1::text, $2::text)"
)


async def _limit_readonly(conn: asyncpg.Connection, limits: dict[str, timedelta]) -> None:
    """Bound what one ad-hoc query or forgotten open transaction can cost (0 = no limit). Only changed
    values are written, so a re-run needs no role privileges once they are set."""
    current = set(await conn.fetchval(_READONLY_SETTINGS) or [])
    for name, value in limits.items():
        ms = int(value.total_seconds() * 1000)
        if f"{name}={ms}" in current:
            continue
        stmt = await conn.fetchval(_ALTER_READONLY, name, str(ms))
        try:
            await conn.execute(stmt)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise MigrationError(
                f"cannot set {name} of tower_readonly: {exc}. Run `tower migrate` once as a superuser or a role with "
                "CREATEROLE; later runs only check the value."
            ) from exc
