"""The migration runner: idempotent, immutable history, same relations under both licenses."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.util
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.support import tsdb
from tests.support.fixtures import DERIVS_COLUMNS, LIQUIDATION_COLUMNS, T0, at, insert_book, insert_trades
from tests.support.market import quiesce_background_jobs
from tests.support.tsdb import with_database, with_user
from tower.cagg_refresh import refresh_feature_caggs
from tower.cli import main
from tower.migrate import DB_DIR, MigrationError, discover, migrate

FEATURE_COLUMNS = {
    "bucket",
    "venue",
    "symbol",
    "asset",
    "book_updates",
    "spread_bps_mean",
    "spread_bps_min",
    "spread_bps_max",
    "bid_qty_mean",
    "ask_qty_mean",
    "bid_notional_mean",
    "ask_notional_mean",
    "depth_notional_mean",
    "book_imbalance_mean",
    "book_imbalance_close",
    "mid_open",
    "mid_high",
    "mid_low",
    "mid_close",
    "trade_count",
    "volume",
    "notional",
    "buy_volume",
    "sell_volume",
    "flow_imbalance",
    "vwap",
    "open",
    "high",
    "low",
    "close",
    "last_update_ts",
    "freshness_s",
    "latency_ms_mean",
    "latency_ms_min",
    "latency_ms_max",
    "book_coverage",
    "trade_coverage",
    "sample_count",
}


async def columns(conn: asyncpg.Connection, relation: str) -> set[str]:
    schema, name = relation.split(".")
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2", schema, name
    )
    return {r["column_name"] for r in rows}


async def test_migrate_twice_is_a_noop(conn):
    before = await conn.fetch("SELECT name, checksum, applied_at FROM ops.schema_migrations ORDER BY name")
    report = await migrate(conn, log=lambda _: None)
    after = await conn.fetch("SELECT name, checksum, applied_at FROM ops.schema_migrations ORDER BY name")
    assert report.applied == []
    assert report.unchanged == len(discover())
    assert [tuple(r) for r in before] == [tuple(r) for r in after]
    assert {p["action"] for p in report.policies} <= {"unchanged", "none", "n/a", "tower-jobs", "skipped"}


async def test_changed_migration_is_refused(conn):
    files = discover()
    target = files[2]
    edited = target.body + "\n-- an edit after the fact\n"
    files[2] = dataclasses.replace(target, body=edited, checksum=hashlib.sha256(edited.encode()).hexdigest())
    with pytest.raises(MigrationError, match=target.name.replace("/", "/") + ".*changed after it was applied"):
        await migrate(conn, files, log=lambda _: None)


async def test_new_migration_is_applied_and_recorded(conn, tmp_path):
    for folder in ("migrations", "caggs", "views"):
        (tmp_path / folder).mkdir()
    for f in discover():
        (tmp_path / f.name).write_text(f.body)
    (tmp_path / "migrations" / "9000_extra.sql").write_text("CREATE TABLE ops.extra (id int);")
    lines: list[str] = []
    report = await migrate(conn, discover(tmp_path), log=lines.append)
    assert report.applied == ["migrations/9000_extra.sql"]
    assert any("applied migrations/9000_extra.sql" in line for line in lines)
    assert await conn.fetchval("SELECT to_regclass('ops.extra') IS NOT NULL")


async def test_failed_migration_leaves_nothing_behind(conn, tmp_path):
    for folder in ("migrations", "caggs", "views"):
        (tmp_path / folder).mkdir()
    for f in discover():
        (tmp_path / f.name).write_text(f.body)
    (tmp_path / "migrations" / "9001_broken.sql").write_text(
        "CREATE TABLE ops.half_done (id int);\nSELECT no_such_function();"
    )
    with pytest.raises(MigrationError, match="9001_broken.sql failed"):
        await migrate(conn, discover(tmp_path), log=lambda _: None)
    assert await conn.fetchval("SELECT to_regclass('ops.half_done') IS NULL")
    assert not await conn.fetchval("SELECT count(*) FROM ops.schema_migrations WHERE name LIKE '%9001%'")


async def test_feature_relations_have_the_contract_columns(conn):
    assert FEATURE_COLUMNS <= await columns(conn, "ops.features_1m")
    assert FEATURE_COLUMNS <= await columns(conn, "ops.features_1h")
    for relation in (
        "ops.raw_trades",
        "ops.raw_book_l1",
        "ops.instruments",
        "ops.connection_events",
        "ops.feed_gaps",
        "ops.rejected_messages",
        "ops.risk_scores",
        "ops.risk_events",
        "ops.book_1m",
        "ops.trades_1m",
        "ops.book_1h",
        "ops.trades_1h",
    ):
        assert await columns(conn, relation), f"{relation} missing"
    assert {"venue", "symbol", "ts", "recv_ts", "trade_id", "price", "qty", "side"} <= await columns(
        conn, "ops.raw_trades"
    )
    assert {"venue", "symbol", "ts", "recv_ts", "bid_px", "bid_qty", "ask_px", "ask_qty", "update_id"} <= await columns(
        conn, "ops.raw_book_l1"
    )


async def test_apache_mode_creates_plain_views(conn, license):
    kinds = dict(
        await conn.fetch(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'ops' AND c.relname IN ('book_1m', 'trades_1m', 'book_1h', 'trades_1h')"
        )
    )
    assert set(kinds) == {"book_1m", "trades_1m", "book_1h", "trades_1h"}
    # A continuous aggregate is also a view in pg_class; what differs is TimescaleDB's catalog.
    caggs = {
        r["view_name"]
        for r in await conn.fetch(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'ops'"
        )
    }
    if license == "apache":
        assert caggs == set()
    else:
        assert caggs == {"book_1m", "trades_1m", "book_1h", "trades_1h", "derivs_1m", "liquidations_1m", "depth_1m"}


@pytest.mark.tsl
async def test_tsl_mode_creates_realtime_caggs_and_jobs(conn):
    rows = await conn.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = 'ops'"
    )
    assert {r["view_name"]: r["materialized_only"] for r in rows} == {
        "book_1m": False,
        "trades_1m": False,
        "book_1h": False,
        "trades_1h": False,
        "derivs_1m": False,
        "liquidations_1m": False,
        "depth_1m": False,
    }
    jobs = await conn.fetch("SELECT proc_name, relation FROM ops.policy_jobs")
    by_kind: dict[str, set[str]] = {}
    for j in jobs:
        by_kind.setdefault(j["proc_name"], set()).add(j["relation"].removeprefix("ops."))
    assert by_kind["policy_refresh_continuous_aggregate"] == {
        "book_1m",
        "trades_1m",
        "book_1h",
        "trades_1h",
        "derivs_1m",
        "liquidations_1m",
        "depth_1m",
    }
    assert {"raw_trades", "raw_book_l1", "risk_scores", "book_1m", "trades_1m"} <= by_kind["policy_compression"]
    assert {"raw_trades", "raw_book_l1", "rejected_messages", "book_1m", "book_1h"} <= by_kind["policy_retention"]


def test_cli_migrate_reports_mode(db_dsn, monkeypatch, capsys, license):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert f"mode: {license}" in out
    assert "0 applied" in out


def test_cli_without_dsn_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("TOWER_DSN", raising=False)
    assert main(["db-info"]) == 2
    assert "TOWER_DSN is not set" in capsys.readouterr().err


def test_cli_db_info_lists_hypertables_and_license(db_dsn, monkeypatch, capsys, license):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    assert main(["db-info"]) == 0
    out = capsys.readouterr().out
    assert f"license: {license}" in out
    assert "ops.raw_trades" in out and "ops.raw_book_l1" in out


async def test_readonly_role_reads_but_cannot_write(conn, db_dsn, readonly_password):
    await migrate(conn, readonly_password=readonly_password, log=lambda _: None)
    ro = await asyncpg.connect(with_user(db_dsn, "tower_readonly", readonly_password))
    try:
        assert await ro.fetchval("SELECT count(*) FROM ops.features_1m") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ro.execute("INSERT INTO ops.instruments (venue, symbol, asset, quote) VALUES ('x', 'y', 'z', 'q')")
    finally:
        await ro.close()


# --- db/views: one file per view, recreated when it changes --------------------------------------------

VIEWS = ("ops.features_1m", "ops.features_1h", "ops.derivs_features_1m")
VIEWS_ADDED_SINCE = ("ops.completeness_daily", "ops.depth_features_1m")  # views the old numbered layout never had
FEATURES_FILE = "views/features_{grain}.sql"
OLD_LAYOUT = "c1168d6"  # the last commit whose views were numbered files (caggs/0110, 0111, 0620, 0621)


def copy_db(tmp_path: Path) -> Path:
    root = tmp_path / "db"
    shutil.copytree(DB_DIR, root)
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new))


async def oids(conn: asyncpg.Connection, relations) -> dict[str, int | None]:
    return {r: await conn.fetchval("SELECT to_regclass($1)::oid", r) for r in relations}


async def records(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT name, checksum, applied_at FROM ops.schema_migrations ORDER BY name")


async def view_shape(conn: asyncpg.Connection, relation: str) -> list[tuple[str, str]]:
    """(column, type) in column order: the contract dashboards and ad-hoc SQL rely on."""
    return [
        tuple(r)
        for r in await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            relation,
        )
    ]


async def test_views_are_recorded_in_dependency_order(conn):
    views = [f for f in discover() if f.kind == "view"]
    assert {f.view for f in views} == set(VIEWS + VIEWS_ADDED_SINCE)
    rows = dict(await conn.fetch("SELECT relation, name FROM ops.schema_migrations WHERE kind = 'view'"))
    assert rows == {
        "ops.completeness_daily": "views/completeness_daily.sql",
        "ops.features_1m": "views/features_1m.sql",
        "ops.features_1h": "views/features_1h.sql",
        "ops.derivs_features_1m": "views/derivs_features_1m.sql",
        "ops.depth_features_1m": "views/depth_features_1m.sql",
    }
    assert not await conn.fetchval(
        "SELECT count(*) FROM ops.schema_migrations WHERE name ~ '^caggs/(0110|0111|0620|0621)_'"
    )
    assert [f.name for f in discover()][-len(views) :] == [f.name for f in views]  # views after numbered files


async def test_changed_view_is_recreated_with_its_dependants_in_one_transaction(conn, tmp_path):
    root = copy_db(tmp_path)
    # Named to sort before features_1m: it must still be created after it.
    (root / "views" / "btc_minutes.sql").write_text(
        "CREATE VIEW ops.btc_minutes AS SELECT bucket, venue, mid_close FROM ops.features_1m WHERE asset = 'BTC';"
    )
    report = await migrate(conn, discover(root), log=lambda _: None)
    assert report.views == {"ops.btc_minutes": "created"}
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE ROLE {role}")
    try:
        await conn.execute(f"GRANT SELECT ON ops.features_1m TO {role}")
        before = await oids(conn, (*VIEWS, "ops.btc_minutes"))
        edit(root, FEATURES_FILE, "-- sample_count and the coverage", "-- (edited) sample_count and the coverage")
        lines: list[str] = []
        report = await migrate(conn, discover(root), log=lines.append)
        assert report.views == {
            "ops.features_1m": "replaced",
            "ops.features_1h": "replaced",
            "ops.btc_minutes": "replaced",
            "ops.completeness_daily": "replaced",  # reads features_1m
        }
        assert report.applied == []
        assert "view ops.features_1m: replaced" in lines and "view ops.btc_minutes: replaced" in lines
        assert not any("derivs_features_1m" in line for line in lines)
        after = await oids(conn, (*VIEWS, "ops.btc_minutes"))
        assert after["ops.derivs_features_1m"] == before["ops.derivs_features_1m"]
        recreated = [after[r] for r in ("ops.features_1m", "ops.features_1h", "ops.btc_minutes")]
        assert all(after[r] != before[r] for r in ("ops.features_1m", "ops.features_1h", "ops.btc_minutes"))
        # One transaction: every recreated view (its rule) and its record carry the same transaction id.
        xids = {
            r[0]
            for r in await conn.fetch("SELECT xmin::text FROM pg_rewrite WHERE ev_class = ANY($1::oid[])", recreated)
        }
        xids |= {
            r[0]
            for r in await conn.fetch(
                "SELECT xmin::text FROM ops.schema_migrations WHERE relation = ANY($1::text[])",
                ["ops.features_1m", "ops.features_1h", "ops.btc_minutes"],
            )
        }
        assert len(xids) == 1
        recorded = await conn.fetchval(
            "SELECT checksum FROM ops.schema_migrations WHERE name = 'views/features_1m.sql'"
        )
        assert recorded == next(f.checksum for f in discover(root) if f.view == "ops.features_1m")
        # Grants survive the recreation: the user's own, and the dashboards' role.
        assert await conn.fetchval("SELECT has_table_privilege($1, 'ops.features_1m', 'SELECT')", role)
        assert await conn.fetchval("SELECT has_table_privilege('tower_readonly', 'ops.btc_minutes', 'SELECT')")

        snapshot = await records(conn)
        report = await migrate(conn, discover(root), log=lambda _: None)
        assert report.views == {} and report.applied == []
        assert report.unchanged == len(discover(root))
        assert await oids(conn, (*VIEWS, "ops.btc_minutes")) == after
        assert await records(conn) == snapshot
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


async def test_broken_view_file_leaves_every_view_as_it_was(conn, tmp_path):
    root = copy_db(tmp_path)
    # A valid change applied first (derivs sorts first), then a broken one: both must roll back.
    edit(root, "views/derivs_features_1m.sql", "AS derivs_updates,", "AS derivs_updates,  -- edited")
    edit(
        root,
        FEATURES_FILE,
        "m.book_updates + m.trade_count                                     AS sample_count",
        "m.no_such_column AS sample_count",
    )
    before = await oids(conn, VIEWS)
    before_records = await records(conn)
    with pytest.raises(
        MigrationError,
        match=r"views/features_\{grain\}\.sql for ops\.features_1m failed.*"
        r"no_such_column.*left as they were",
    ):
        await migrate(conn, discover(root), log=lambda _: None)
    assert await oids(conn, VIEWS) == before
    assert await records(conn) == before_records
    assert await conn.fetchval("SELECT count(*) FROM ops.features_1m") == 0  # still answers


async def test_unmanaged_dependant_stops_the_run_and_nothing_changes(conn, tmp_path):
    await conn.execute("CREATE VIEW public.my_spreads AS SELECT bucket, venue, spread_bps_mean FROM ops.features_1h")
    report = await migrate(conn, log=lambda _: None)  # nothing to recreate: the user's view is no obstacle
    assert report.views == {}
    root = copy_db(tmp_path)
    edit(root, FEATURES_FILE, "-- sample_count and the coverage", "-- (edited) sample_count and the coverage")
    before = await oids(conn, (*VIEWS, "public.my_spreads"))
    before_records = await records(conn)
    with pytest.raises(
        MigrationError,
        match=r"would drop public\.my_spreads.*no file in db/views/.*"
        r"Nothing was changed",
    ) as err:
        await migrate(conn, discover(root), log=lambda _: None)
    assert "views/features_{grain}.sql" in str(err.value)
    assert await oids(conn, (*VIEWS, "public.my_spreads")) == before
    assert await records(conn) == before_records


async def test_view_dropped_by_hand_or_by_a_migration_is_recreated(conn, tmp_path):
    root = copy_db(tmp_path)
    # A numbered migration that changes what a view reads drops the view; the same run recreates it.
    (root / "migrations" / "9002_drop_a_view.sql").write_text("DROP VIEW ops.features_1h;")
    await conn.execute("DROP VIEW ops.derivs_features_1m")
    lines: list[str] = []
    report = await migrate(conn, discover(root), log=lines.append)
    assert report.applied == ["migrations/9002_drop_a_view.sql"]
    assert report.views == {"ops.derivs_features_1m": "created", "ops.features_1h": "created"}
    assert "view ops.derivs_features_1m: created" in lines
    assert any(line.startswith("done:") and "2 views (re)created" in line for line in lines)
    assert all((await oids(conn, VIEWS)).values())
    assert await conn.fetchval("SELECT has_table_privilege('tower_readonly', 'ops.features_1h', 'SELECT')")


async def test_view_file_must_define_the_view_it_is_named_after(tmp_path):
    root = tmp_path / "db"
    (root / "views").mkdir(parents=True)
    (root / "views" / "spreads.sql").write_text("CREATE VIEW ops.other AS SELECT 1 AS one;")
    with pytest.raises(MigrationError, match=r"views/spreads\.sql: must hold exactly one `CREATE VIEW ops\.spreads"):
        discover(root)
    (root / "views" / "spreads.sql").unlink()
    (root / "views" / "spreads_{grain}.sql").write_text("CREATE VIEW ops.spreads_{grain} AS SELECT 1 AS one;")
    with pytest.raises(MigrationError, match=r"needs a line `-- grains: 1m, 1h`"):
        discover(root)


def old_layout(tmp_path: Path) -> Path:
    """db/ and the runner as they were before db/views existed, straight from git."""
    repo = DB_DIR.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", OLD_LAYOUT, "db", "tower/migrate.py"], capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(
            f"needs the git history of this repository (commit {OLD_LAYOUT}): {archive.stderr.decode().strip()}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


async def test_database_migrated_by_the_old_runner_upgrades_cleanly(server_dsn, tmp_path):
    old = old_layout(tmp_path)
    spec = importlib.util.spec_from_file_location("old_migrate", old / "tower" / "migrate.py")
    assert spec is not None and spec.loader is not None
    old_runner = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old_runner  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(old_runner)
    finally:
        del sys.modules[spec.name]
    name = f"tower_old_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(server_dsn, name))
    try:
        await old_runner.migrate(conn, log=lambda _: None)
        await quiesce_background_jobs(conn)  # TSL: policy jobs would rewrite the fixture minutes mid-test
        old_names = {r[0] for r in await conn.fetch("SELECT name FROM ops.schema_migrations")}
        assert {
            "caggs/0110_features_1m.sql",
            "caggs/0111_features_1h.sql",
            "caggs/0620_derivs_features_1m.sql",
            "caggs/0621_derivs_features_revised.sql",
        } <= old_names
        await insert_book(
            conn,
            [
                ("binance", "BTCUSDT", at(0.5), at(0.6), 100.0, 3.0, 100.1, 1.0, 1),
                ("binance", "BTCUSDT", at(70), at(70.2), 100.0, 1.0, 100.2, 2.0, 2),
                ("okx", "BTC-USDT-SWAP", at(3), at(3.1), 99.9, 1.0, 100.1, 3.0, 1),
            ],
        )
        await insert_trades(
            conn,
            [
                ("binance", "BTCUSDT", at(5), at(5.01), "1", 100.05, 1.0, "buy"),
                ("binance", "BTCUSDT", at(65), at(65.03), "2", 100.0, 3.0, "sell"),
            ],
        )
        await conn.copy_records_to_table(
            "raw_derivs",
            schema_name="ops",
            records=[
                ("okx", "BTC-USDT-SWAP", at(1), at(1), 100.1, None, None, None, None, 10.0),
                ("okx", "BTC-USDT-SWAP", at(2), at(2), None, 100.0, 0.0001, timedelta(hours=8), None, None),
            ],
            columns=DERIVS_COLUMNS,
        )
        await conn.copy_records_to_table(
            "raw_liquidations",
            schema_name="ops",
            records=[("binance", "BTCUSDT", at(9), at(9), "sell", 100.0, 2.0)],
            columns=LIQUIDATION_COLUMNS,
        )
        await refresh_feature_caggs(conn, T0, T0 + timedelta(hours=1))
        shapes = {v: await view_shape(conn, v) for v in VIEWS}
        rows = {v: await conn.fetch(f"SELECT * FROM {v} ORDER BY bucket, venue, symbol") for v in VIEWS}
        assert all(rows.values())

        lines: list[str] = []
        report = await migrate(conn, log=lines.append)
        await quiesce_background_jobs(conn)
        assert report.views == {**dict.fromkeys(VIEWS, "replaced"), **dict.fromkeys(VIEWS_ADDED_SINCE, "created")}
        # Columns appended since (the quality columns of features_*) leave the old ones where they were.
        after = {v: await view_shape(conn, v) for v in VIEWS}
        assert {v: after[v][: len(shapes[v])] for v in VIEWS} == shapes
        new_rows = {v: await conn.fetch(f"SELECT * FROM {v} ORDER BY bucket, venue, symbol") for v in VIEWS}
        assert {v: [tuple(r)[: len(shapes[v])] for r in new_rows[v]] for v in VIEWS} == {
            v: [tuple(r) for r in rows[v]] for v in VIEWS
        }
        recorded = dict(await conn.fetch("SELECT relation, kind FROM ops.schema_migrations WHERE kind = 'view'"))
        assert recorded == dict.fromkeys(VIEWS + VIEWS_ADDED_SINCE, "view")
        report = await migrate(conn, log=lambda _: None)
        assert report.views == {} and report.applied == []
        assert await conn.fetchval("SELECT has_table_privilege('tower_readonly', 'ops.features_1m', 'SELECT')")
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_fresh_views_have_the_shape_of_the_old_numbered_files(conn, tmp_path):
    """Column names, order and types of a new database match what the old files created (columns added
    since come after them)."""
    old = old_layout(tmp_path)
    ddl = {
        "ops.features_1m": "0110_features_1m.sql",
        "ops.features_1h": "0111_features_1h.sql",
        "ops.derivs_features_1m": "0621_derivs_features_revised.sql",
    }
    for relation, file in ddl.items():
        new_shape = await view_shape(conn, relation)
        body = (old / "db" / "caggs" / file).read_text().split("\nCOMMENT ON")[0]
        body = re.sub(
            rf"^CREATE (OR REPLACE )?VIEW {relation} AS", f"CREATE VIEW {relation}_old AS", body, flags=re.MULTILINE
        )
        await conn.execute(body)
        old_shape = await view_shape(conn, relation + "_old")
        assert new_shape[: len(old_shape)] == old_shape, relation  # later columns only ever appended


# --- first boot and the wrong role -----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens on it once the socket is closed


def test_migrate_wait_retries_then_says_the_database_did_not_answer(monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", f"postgresql://tower@127.0.0.1:{closed_port()}/tower")
    started = time.monotonic()
    assert main(["migrate", "--wait", "2s"]) == 2
    waited = time.monotonic() - started
    captured = capsys.readouterr()
    assert "waiting for the database" in captured.out  # progress while it retries
    assert "did not answer within 2s" in captured.err and "TOWER_DSN" in captured.err
    assert "Traceback" not in captured.err
    assert waited < 30  # it gives up at the deadline instead of hanging


def test_migrate_wait_connects_once_the_database_is_up(db_dsn, monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    assert main(["migrate", "--wait", "60s"]) == 0
    assert "done:" in capsys.readouterr().out


def test_migrate_wait_needs_a_duration(capsys):
    with pytest.raises(SystemExit):
        main(["migrate", "--wait", "soon"])
    assert "bad duration 'soon'" in capsys.readouterr().err


async def test_migrate_as_the_readonly_role_is_refused_before_it_does_anything(
    conn, db_dsn, readonly_password, monkeypatch, capsys
):
    await migrate(conn, readonly_password=readonly_password, log=lambda _: None)
    before = await records(conn)
    monkeypatch.setenv("TOWER_DSN", with_user(db_dsn, "tower_readonly", readonly_password))
    assert await asyncio.to_thread(main, ["migrate"]) == 2
    err = capsys.readouterr().err
    assert "tower migrate needs the schema owner" in err and "TOWER_DSN connects as tower_readonly" in err
    assert "Traceback" not in err
    assert await records(conn) == before


def test_suite_puts_the_readonly_role_back_as_it_found_it(server_dsn):
    """The password a test run sets on the server-wide role is random and undone at the end of the run."""
    ours = asyncio.run(tsdb.readonly_state(server_dsn))
    asyncio.run(tsdb.restore_readonly(server_dsn, (False, f"before-{uuid.uuid4().hex}")))
    try:
        before = asyncio.run(tsdb.readonly_state(server_dsn))
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"{__file__}::test_readonly_role_reads_but_cannot_write",
            ],
            env={**os.environ, "TOWER_TEST_DSN": server_dsn},
            cwd=DB_DIR.parent,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-3000:]
        assert asyncio.run(tsdb.readonly_state(server_dsn)) == before
    finally:
        asyncio.run(tsdb.restore_readonly(server_dsn, ours))
