"""`tower migrate` bounds tower_readonly's sessions in its own database: statement_timeout and
idle_in_transaction_session_timeout, set with ALTER ROLE ... IN DATABASE, so other databases on the
server are untouched. Role settings apply at login, so these tests log in as tower_readonly."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from tests.support import tsdb
from tower.cli import main
from tower.migrate import migrate
from tower.settings import ConfigError, ReadonlySettings, load


async def _login(dsn: str, password: str) -> asyncpg.Connection:
    return await asyncpg.connect(tsdb.with_user(dsn, "tower_readonly", password))


@pytest.fixture
def other_db_dsn(server_dsn, template_db):
    name = asyncio.run(tsdb.clone(server_dsn, template_db))
    yield tsdb.with_database(server_dsn, name)
    asyncio.run(tsdb.drop(server_dsn, name))


async def _show(dsn: str, password: str, setting: str) -> str:
    ro = await _login(dsn, password)
    try:
        return await ro.fetchval(f"SHOW {setting}")
    finally:
        await ro.close()


async def test_migrate_sets_the_timeouts_in_its_database_only(conn, db_dsn, other_db_dsn, readonly_password):
    await migrate(
        conn,
        readonly_password=readonly_password,
        readonly_statement_timeout=timedelta(seconds=7),
        readonly_idle_timeout=timedelta(minutes=3),
        log=lambda _: None,
    )
    assert await _show(db_dsn, readonly_password, "statement_timeout") == "7s"
    assert await _show(db_dsn, readonly_password, "idle_in_transaction_session_timeout") == "3min"
    assert await _show(other_db_dsn, readonly_password, "statement_timeout") != "7s"
    assert await _show(other_db_dsn, readonly_password, "idle_in_transaction_session_timeout") != "3min"


async def test_defaults_are_60_s_and_5_min_and_a_rerun_applies_a_change(conn, db_dsn, readonly_password):
    await migrate(conn, readonly_password=readonly_password, log=lambda _: None)
    assert await _show(db_dsn, readonly_password, "statement_timeout") == "1min"
    assert await _show(db_dsn, readonly_password, "idle_in_transaction_session_timeout") == "5min"
    await migrate(conn, readonly_statement_timeout=timedelta(0), log=lambda _: None)
    assert await _show(db_dsn, readonly_password, "statement_timeout") == "0"  # off: no limit


async def test_a_long_query_through_tower_readonly_is_cancelled(conn, db_dsn, readonly_password):
    await migrate(
        conn, readonly_password=readonly_password, readonly_statement_timeout=timedelta(seconds=1), log=lambda _: None
    )
    ro = await _login(db_dsn, readonly_password)
    try:
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await ro.fetchval("SELECT pg_sleep(30)")
        assert await ro.fetchval("SELECT 1") == 1  # the session survives its cancelled query
    finally:
        await ro.close()


async def test_a_transaction_left_open_through_tower_readonly_is_ended(conn, db_dsn, readonly_password):
    await migrate(
        conn, readonly_password=readonly_password, readonly_idle_timeout=timedelta(seconds=1), log=lambda _: None
    )
    ro = await _login(db_dsn, readonly_password)
    try:
        await ro.execute("BEGIN")
        await ro.fetchval("SELECT count(*) FROM ops.instruments")
        await asyncio.sleep(3)  # idle in the open transaction, well past the 1 s limit
        with pytest.raises(asyncpg.InterfaceError, match="connection is closed"):  # the server ended it
            await ro.fetchval("SELECT 1")
    finally:
        ro.terminate()


def test_timeouts_read_seconds_durations_and_off(monkeypatch):
    for text, expected in (("90", timedelta(seconds=90)), ("2m", timedelta(minutes=2)), ("off", timedelta(0))):
        monkeypatch.setenv("TOWER_READONLY_STATEMENT_TIMEOUT", text)
        assert load(ReadonlySettings).statement_timeout == expected
    monkeypatch.delenv("TOWER_READONLY_STATEMENT_TIMEOUT")
    assert load(ReadonlySettings).statement_timeout == timedelta(seconds=60)


@pytest.mark.parametrize("variable", ["TOWER_READONLY_STATEMENT_TIMEOUT", "TOWER_READONLY_IDLE_TIMEOUT"])
def test_a_bad_timeout_names_the_variable(monkeypatch, variable):
    monkeypatch.setenv(variable, "1.5 minutes")
    with pytest.raises(ConfigError, match=f"{variable}: .*bad timeout '1.5 minutes'"):
        load(ReadonlySettings)


def test_cli_migrate_refuses_a_bad_timeout_before_touching_the_database(db_dsn, monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    monkeypatch.setenv("TOWER_READONLY_STATEMENT_TIMEOUT", "-5")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "TOWER_READONLY_STATEMENT_TIMEOUT" in err and "Traceback" not in err
