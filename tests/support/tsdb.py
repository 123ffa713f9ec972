"""Where the tests get a TimescaleDB server from, and how each test gets its own database."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# The image users' testcontainers runs pull when a Docker engine answers (pinned, pg17, TSL build).
TIMESCALE_IMAGE = "timescale/timescaledb:2.22.1-pg17"

HOW_TO_GET_ONE = (
    """no TimescaleDB server for the tests.
Give the suite one of:
  * TOWER_TEST_DSN=postgresql://postgres@127.0.0.1:55432/postgres  (a role that may CREATE DATABASE;
    `scripts/local-timescaledb start` starts one without Docker on Debian/Ubuntu and prints this DSN)
  * a running Docker engine: testcontainers then starts """
    + TIMESCALE_IMAGE
)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


async def create_template(server_dsn: str, build) -> str:
    """A migrated database the tests clone; cloning is much faster than migrating per test."""
    name = f"tower_tmpl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(server_dsn, name))
    try:
        await build(conn)
    finally:
        await conn.close()
    admin = await asyncpg.connect(server_dsn)
    try:
        # TimescaleDB's job scheduler keeps a connection to every database that allows them;
        # a template must have none, or CREATE DATABASE ... TEMPLATE fails.
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    return name


async def clone(server_dsn: str, template: str) -> str:
    name = f"tower_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        for attempt in range(20):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except asyncpg.ObjectInUseError:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", template
                )
                await asyncio.sleep(0.1 * (attempt + 1))
        else:
            raise RuntimeError(f"template database {template} stayed busy")
    finally:
        await admin.close()
    return name


async def drop(server_dsn: str, name: str, *, template: bool = False) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        if template:
            await admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def with_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


# --- the server-wide tower_readonly role: the suite changes it, and puts it back at the end ----------

READONLY = "tower_readonly"


async def readonly_state(server_dsn: str) -> tuple[bool, str | None] | None:
    """(may log in, password hash) of the role, or None when the server has no such role yet."""
    admin = await asyncpg.connect(server_dsn)
    try:
        row = await admin.fetchrow("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1", READONLY)
    finally:
        await admin.close()
    return None if row is None else (row["rolcanlogin"], row["rolpassword"])


async def restore_readonly(server_dsn: str, before: tuple[bool, str | None] | None) -> None:
    """Give the role back the login and password it had; drop it if this run created it (when no other
    database still grants it something, else leave it unable to log in)."""
    admin = await asyncpg.connect(server_dsn)
    try:
        if before is None:
            try:
                await admin.execute(f"DROP ROLE IF EXISTS {READONLY}")
                return
            except asyncpg.DependentObjectsStillExistError:
                before = (False, None)
        login, password = before
        # A stored SCRAM/MD5 hash given as the password is kept as it is, not hashed again.
        stmt = await admin.fetchval(
            "SELECT format('ALTER ROLE %I WITH %s PASSWORD %s', $1::text, $2::text, "
            "coalesce(quote_literal($3::text), 'NULL'))",
            READONLY,
            "LOGIN" if login else "NOLOGIN",
            password,
        )
        await admin.execute(stmt)
    finally:
        await admin.close()


async def create_login_role(server_dsn: str) -> tuple[str, str]:
    """A new role that may log in and holds no grants at all: (name, password); drop it with drop_role."""
    name, password = f"tower_test_role_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    finally:
        await admin.close()
    return name, password


async def drop_role(server_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
    finally:
        await admin.close()
