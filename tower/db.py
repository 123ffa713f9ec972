"""Connecting to the database and asking it what it can do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from tower.durations import format_duration
from tower.settings import DatabaseSettings, load

# A server that is not up yet: nothing listening, still starting, or restarting after its init scripts.
# Wrong passwords and missing databases are not in here: waiting cannot fix them.
NOT_UP_YET = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)
RETRY_CAP_S = 5.0


async def connect(dsn: str | None = None) -> asyncpg.Connection:
    dsn = dsn or load(DatabaseSettings).dsn
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot connect to the database ({_redact(dsn)}): {exc}") from exc


async def connect_waiting(dsn: str, wait: timedelta, log: Callable[[str], None] = print) -> asyncpg.Connection:
    """Connect, retrying with backoff while the server is not up yet, for at most `wait` (a first boot)."""
    deadline = time.monotonic() + wait.total_seconds()
    delay = 0.5
    while True:
        left = deadline - time.monotonic()
        try:
            return await asyncpg.connect(dsn, timeout=max(min(left, RETRY_CAP_S), 0.5))
        except NOT_UP_YET as exc:
            left = deadline - time.monotonic()
            reason = f"{type(exc).__name__}: {exc}"
            if left <= 0:
                raise ConnectionError(
                    f"the database ({_redact(dsn)}) did not answer within {format_duration(wait)} ({reason}); "
                    "check that it is running and that TOWER_DSN names its host and port"
                ) from exc
            pause = min(delay, left)
            log(f"waiting for the database ({_redact(dsn)}): {reason}; retrying in {pause:.1f} s, {left:.0f} s left")
            await asyncio.sleep(pause)
            delay = min(delay * 2, RETRY_CAP_S)
        except asyncpg.PostgresError as exc:
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
