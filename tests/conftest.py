"""Shared fixtures: a real TimescaleDB (TOWER_TEST_DSN, else testcontainers, else a clear failure),
a migrated template database per session, and a fresh clone of it per test."""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg
import pytest

from tests.support import tsdb
from tower.migrate import migrate


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def server_dsn():
    dsn = os.environ.get("TOWER_TEST_DSN")
    if dsn:
        yield dsn
        return
    if tsdb.docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(tsdb.TIMESCALE_IMAGE, driver=None)
        container.with_env("TIMESCALEDB_TELEMETRY", "off").with_env("NO_TS_TUNE", "true")
        with container as pg:
            yield pg.get_connection_url()
        return
    pytest.exit(tsdb.HOW_TO_GET_ONE, returncode=3)


_MODE: dict[str, str] = {}


async def _build_template(conn: asyncpg.Connection) -> None:
    report = await migrate(conn, log=_quiet)
    _MODE["license"] = report.mode
    if report.mode == "timescale":
        # Clones inherit the policy jobs, and the scheduler would start them within seconds on the
        # fixed-past fixture chunks a test is writing. Tests run jobs explicitly (run_job, refresh).
        await conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE job_id >= 1000"
        )


@pytest.fixture(scope="session")
def readonly_password(server_dsn) -> str:
    """A password for the server-wide tower_readonly role, new every run; at the end of the session the
    role gets back the state it had (or is dropped, if this run created it)."""
    before = asyncio.run(tsdb.readonly_state(server_dsn))
    yield f"ro-{secrets.token_urlsafe(18)}"
    asyncio.run(tsdb.restore_readonly(server_dsn, before))


@pytest.fixture(scope="session")
def template_db(server_dsn, readonly_password):
    name = asyncio.run(tsdb.create_template(server_dsn, _build_template))
    yield name
    asyncio.run(tsdb.drop(server_dsn, name, template=True))


@pytest.fixture(scope="session")
def license(template_db) -> str:
    """'timescale' (TSL build) or 'apache', as the migration saw it."""
    return _MODE["license"]


@pytest.fixture
def db_dsn(server_dsn, template_db):
    """DSN of a fresh, fully migrated database that only this test uses."""
    name = asyncio.run(tsdb.clone(server_dsn, template_db))
    yield tsdb.with_database(server_dsn, name)
    asyncio.run(tsdb.drop(server_dsn, name))


@pytest.fixture
async def conn(db_dsn):
    connection = await asyncpg.connect(db_dsn)
    yield connection
    await connection.close()


@pytest.fixture(autouse=True)
def _tsl_only(request):
    if request.node.get_closest_marker("tsl") is None:
        return
    license = request.getfixturevalue("license")
    if license != "timescale":
        pytest.skip(
            f"needs the TimescaleDB community (TSL) build: continuous aggregates, compression and "
            f"policies; this server's timescaledb.license is {license!r}"
        )


@pytest.fixture
def bare_role(server_dsn):
    """(name, password) of a login role with no grants on anything, dropped after the test (the test must
    drop the databases or revoke what it granted first: a role that holds grants cannot be dropped)."""
    name, password = asyncio.run(tsdb.create_login_role(server_dsn))
    yield name, password
    asyncio.run(tsdb.drop_role(server_dsn, name))
