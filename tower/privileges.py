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


def role_of(dsn: str | None) -> str:
    """The role a DSN logs in as; like libpq, the OS user when the DSN names none."""
    user = urlsplit(dsn).username if dsn else None
    return user or os.environ.get("PGUSER") or getpass.getuser()


def explain(exc: asyncpg.InsufficientPrivilegeError, role: str) -> str:
    found = _DENIED.search(exc.message or str(exc))
    query = getattr(exc, "query", None) or ""
    fix = "or use the schema owner's DSN in TOWER_DSN"
    if not found:
        return f"role {role} lacks a privilege: {exc}; {fix}"
    kind, name = found.group(1), found.group(2).strip('"')
    if kind == "schema":
        grant = "CREATE" if _statement(query) in ("CREATE", "ALTER", "DROP", "COMMENT") else "USAGE"
        return f"role {role} may not use schema {name} ({grant}): GRANT {grant} ON SCHEMA {name} TO {role}, {fix}"
    if kind == "database":
        return f"role {role} may not connect to database {name}: GRANT CONNECT ON DATABASE {name} TO {role}, {fix}"
    if kind == "function":
        return f"role {role} may not call {name}: GRANT EXECUTE ON FUNCTION {name} TO {role}, {fix}"
    relation = _qualified(name, query, exc)
    if kind == "sequence":
        return f"role {role} may not use sequence {relation}: GRANT USAGE ON SEQUENCE {relation} TO {role}, {fix}"
    verb, grant = _TABLE_VERBS.get(_statement(query), ("change", "SELECT, INSERT, UPDATE, DELETE"))
    return f"role {role} may not {verb} {relation}: GRANT {grant} ON {relation} TO {role}, {fix}"


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
