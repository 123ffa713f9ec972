"""A permission error from PostgreSQL as one line that says which grant is missing, for whom, and on what."""

from __future__ import annotations

import getpass
import os
import re
from urllib.parse import urlsplit

import asyncpg

_DENIED = re.compile(r"permission denied for (table|view|materialized view|sequence|schema|function|database) (\S+)")
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(\w+)", re.IGNORECASE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# How each statement reads in the message, and the privilege it needs on a table.
_TABLE_VERBS = {
    "SELECT": ("SELECT from", "SELECT"),
    "INSERT": ("INSERT into", "INSERT"),
    "UPDATE": ("UPDATE", "UPDATE"),
    "DELETE": ("DELETE from", "DELETE"),
    "TRUNCATE": ("TRUNCATE", "TRUNCATE"),
}


class MissingGrant(Exception):
    """A command checked, before starting, that its role may do what it will do, and it may not."""


async def require(conn: asyncpg.Connection, privilege: str, relations: list[str]) -> None:
    """Raise MissingGrant unless the connection's role holds `privilege` (e.g. INSERT) on every relation."""
    role = await conn.fetchval("SELECT current_user")
    schemas = sorted({r.split(".", 1)[0] for r in relations})
    for schema in schemas:
        if not await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", schema):
            raise MissingGrant(_line(role, f"use schema {schema} (USAGE)", f"USAGE ON SCHEMA {schema}"))
    lacking = await conn.fetchval(
        "SELECT array_agg(r ORDER BY r) FROM unnest($1::text[]) r WHERE NOT has_table_privilege(r, $2)",
        relations,
        privilege,
    )
    if lacking:
        verb = _TABLE_VERBS.get(privilege, (privilege, privilege))[0]
        names = ", ".join(lacking)
        raise MissingGrant(_line(role, f"{verb} {names}", f"{privilege} ON {names}"))


def _line(role: str, action: str, grant: str) -> str:
    return f"role {role} may not {action}: GRANT {grant} TO {role}, or use the schema owner's DSN in TOWER_DSN"


def role_of(dsn: str | None) -> str:
    """The role a DSN logs in as; like libpq, the OS user when the DSN names none."""
    user = urlsplit(dsn).username if dsn else None
    return user or os.environ.get("PGUSER") or getpass.getuser()


def explain(exc: asyncpg.InsufficientPrivilegeError, role: str) -> str:
    found = _DENIED.search(exc.message or str(exc))
    query = getattr(exc, "query", None) or ""
    if not found:
        return f"role {role} lacks a privilege ({exc}), or use the schema owner's DSN in TOWER_DSN"
    kind, name = found.group(1), found.group(2).strip('"')
    if kind == "schema":
        grant = "CREATE" if _statement(query) in ("CREATE", "ALTER", "DROP", "COMMENT") else "USAGE"
        return _line(role, f"use schema {name} ({grant})", f"{grant} ON SCHEMA {name}")
    if kind == "database":
        if _statement(query) == "CREATE":  # CREATE SCHEMA / EXTENSION
            return _line(role, f"create schemas in database {name}", f"CREATE ON DATABASE {name}")
        return _line(role, f"connect to database {name}", f"CONNECT ON DATABASE {name}")
    if kind == "function":
        return _line(role, f"call {name}", f"EXECUTE ON FUNCTION {name}")
    relation = _qualified(name, query, exc)
    if kind == "sequence":
        return _line(role, f"use sequence {relation}", f"USAGE ON SEQUENCE {relation}")
    verb, grant = _TABLE_VERBS.get(_statement(query), ("change", "SELECT, INSERT, UPDATE, DELETE"))
    return _line(role, f"{verb} {relation}", f"{grant} ON {relation}")


def _statement(query: str) -> str:
    """The statement kind of the query that failed (COPY ... FROM STDIN inserts; a CTE may write)."""
    match = _FIRST_WORD.match(query)
    word = match.group(1).upper() if match else ""
    if word == "COPY":
        return "INSERT" if re.search(r"\bFROM\s+STDIN\b", query, re.IGNORECASE) else "SELECT"
    if word == "WITH":
        writes = _WRITES.search(query)
        return writes.group(1).upper() if writes else "SELECT"
    return word


def _qualified(name: str, query: str, exc: asyncpg.PostgresError) -> str:
    if "." in name:
        return name
    schema = getattr(exc, "schema_name", None)
    if not schema:
        match = re.search(rf'"?(\w+)"?\."?{re.escape(name)}\b', query)
        schema = match.group(1) if match else None
    return f"{schema}.{name}" if schema else name
