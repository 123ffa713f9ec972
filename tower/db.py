"""Connecting to the database and asking it what it can do."""

from __future__ import annotations

import asyncpg

from tower.settings import DatabaseSettings, load


async def connect(dsn: str | None = None) -> asyncpg.Connection:
    dsn = dsn or load(DatabaseSettings).dsn
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot connect to the database ({_redact(dsn)}): {exc}") from exc


async def license_of(conn: asyncpg.Connection) -> str:
    """'timescale' (TSL build: caggs, compression, policies) or 'apache' (hypertables only)."""
    value = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    if value is None:
        raise RuntimeError("timescaledb is not loaded in this database (run `tower migrate`)")
    return value


def _redact(dsn: str) -> str:
    """The DSN without its password, for error messages and logs."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else dsn
