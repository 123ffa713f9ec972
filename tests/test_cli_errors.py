"""User mistakes in how `tower` is run get one clear line and exit code 2, never a traceback: a bad log
level, a malformed TOWER_DSN, a role without the grants a command needs."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest

from tests.support.tsdb import with_user
from tower.cli import main
from tower.privileges import explain


def test_bad_log_level_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("TOWER_LOG_LEVEL", "LOUD")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "TOWER_LOG_LEVEL='LOUD' is not a log level" in err and "INFO" in err
    assert "Traceback" not in err


def test_bad_log_level_flag_names_the_flag(monkeypatch, capsys):
    monkeypatch.delenv("TOWER_LOG_LEVEL", raising=False)
    assert main(["--log-level", "chatty", "status"]) == 2
    assert "--log-level='chatty' is not a log level" in capsys.readouterr().err


def test_dsn_with_a_non_numeric_port_names_tower_dsn_and_the_port(monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", "postgresql://u@localhost:abc/db")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "TOWER_DSN" in err and "port 'abc' is not a number" in err


async def grant(conn, *statements: str) -> None:
    for statement in statements:
        await conn.execute(statement)


@pytest.mark.parametrize("command", [["status"], ["jobs", "--once"], ["migrate"]])
async def test_role_without_usage_on_ops_is_told_the_grant(command, bare_role, conn, db_dsn, monkeypatch, capsys):
    role, password = bare_role
    monkeypatch.setenv("TOWER_DSN", with_user(db_dsn, role, password))
    assert await asyncio.to_thread(main, command) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if command == ["migrate"]:
        assert "tower migrate needs the schema owner" in err and f"TOWER_DSN connects as {role}" in err
    else:
        assert f"role {role} may not use schema ops (USAGE): GRANT USAGE ON SCHEMA ops TO {role}" in err


async def test_role_that_may_only_read_is_told_which_write_it_lacks(bare_role, conn, db_dsn, monkeypatch, capsys):
    role, password = bare_role
    await grant(conn, f"GRANT USAGE ON SCHEMA ops TO {role}", f"GRANT SELECT ON ALL TABLES IN SCHEMA ops TO {role}")
    monkeypatch.setenv("TOWER_DSN", with_user(db_dsn, role, password))
    assert await asyncio.to_thread(main, ["jobs", "--once"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"role {role} may not INSERT into ops." in err and "GRANT INSERT ON ops." in err, err


@contextmanager
def not_found_server() -> Iterator[str]:
    """A loopback HTTP server that answers 404 to everything."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        do_POST = do_PUT = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def root_at_info():
    """The root logger as a user's `tower` has it (pytest's own handlers keep basicConfig from setting it)."""
    loggers = [logging.getLogger(name) for name in ("", "httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    logging.getLogger().setLevel(logging.INFO)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize(("level", "logged"), [("INFO", False), ("DEBUG", True)])
def test_http_requests_are_logged_only_at_debug(level, logged, root_at_info, monkeypatch, caplog):
    """One line per HTTP request at INFO was most of a demo's log."""
    monkeypatch.delenv("TOWER_DSN", raising=False)
    assert main(["--log-level", level, "status"]) == 2  # sets up logging, then stops: no TOWER_DSN
    with not_found_server() as url:
        httpx.get(url + "/api/health")
    requests = [r for r in caplog.records if r.name == "httpx" and "HTTP Request" in r.getMessage()]
    assert bool(requests) == logged


async def test_role_that_may_not_create_schemas_is_told_so(bare_role, conn, db_dsn, capsys):
    """What the shared handler says for a permission error a command did not check for itself."""
    role, password = bare_role
    other = await asyncpg.connect(with_user(db_dsn, role, password))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as denied:
            await other.execute("CREATE SCHEMA ops_scratch")
    finally:
        await other.close()
    database = db_dsn.rsplit("/", 1)[1]
    assert explain(denied.value, role) == (
        f"role {role} may not create schemas in database {database}: GRANT CREATE ON DATABASE {database} "
        f"TO {role}, or use the schema owner's DSN in TOWER_DSN"
    )
