"""The migration runner: idempotent, immutable history, same relations under both licenses."""

from __future__ import annotations

import dataclasses
import hashlib

import asyncpg
import pytest

from tests.tsdb import with_user
from tower.cli import main
from tower.migrate import MigrationError, discover, migrate

FEATURE_COLUMNS = {
    "bucket", "venue", "symbol", "asset", "book_updates", "spread_bps_mean", "spread_bps_min",
    "spread_bps_max", "bid_qty_mean", "ask_qty_mean", "bid_notional_mean", "ask_notional_mean",
    "depth_notional_mean", "book_imbalance_mean", "book_imbalance_close", "mid_open", "mid_high",
    "mid_low", "mid_close", "trade_count", "volume", "notional", "buy_volume", "sell_volume",
    "flow_imbalance", "vwap", "open", "high", "low", "close", "last_update_ts", "freshness_s",
    "latency_ms_mean", "latency_ms_min", "latency_ms_max", "book_coverage", "trade_coverage",
    "sample_count",
}


async def columns(conn: asyncpg.Connection, relation: str) -> set[str]:
    schema, name = relation.split(".")
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        schema, name)
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
    for folder in ("migrations", "caggs"):
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
    for folder in ("migrations", "caggs"):
        (tmp_path / folder).mkdir()
    for f in discover():
        (tmp_path / f.name).write_text(f.body)
    (tmp_path / "migrations" / "9001_broken.sql").write_text(
        "CREATE TABLE ops.half_done (id int);\nSELECT no_such_function();")
    with pytest.raises(MigrationError, match="9001_broken.sql failed"):
        await migrate(conn, discover(tmp_path), log=lambda _: None)
    assert await conn.fetchval("SELECT to_regclass('ops.half_done') IS NULL")
    assert not await conn.fetchval("SELECT count(*) FROM ops.schema_migrations WHERE name LIKE '%9001%'")


async def test_feature_relations_have_the_contract_columns(conn):
    assert FEATURE_COLUMNS <= await columns(conn, "ops.features_1m")
    assert FEATURE_COLUMNS <= await columns(conn, "ops.features_1h")
    for relation in ("ops.raw_trades", "ops.raw_book_l1", "ops.instruments", "ops.connection_events",
                     "ops.feed_gaps", "ops.rejected_messages", "ops.risk_scores", "ops.risk_events",
                     "ops.book_1m", "ops.trades_1m", "ops.book_1h", "ops.trades_1h"):
        assert await columns(conn, relation), f"{relation} missing"
    assert {"venue", "symbol", "ts", "recv_ts", "trade_id", "price", "qty", "side"} <= await columns(
        conn, "ops.raw_trades")
    assert {"venue", "symbol", "ts", "recv_ts", "bid_px", "bid_qty", "ask_px", "ask_qty", "update_id"} <= \
        await columns(conn, "ops.raw_book_l1")


async def test_apache_mode_creates_plain_views(conn, license):
    kinds = dict(await conn.fetch(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'ops' AND c.relname IN ('book_1m', 'trades_1m', 'book_1h', 'trades_1h')"))
    assert set(kinds) == {"book_1m", "trades_1m", "book_1h", "trades_1h"}
    # A continuous aggregate is also a view in pg_class; what differs is TimescaleDB's catalog.
    caggs = {r["view_name"] for r in await conn.fetch(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'ops'")}
    if license == "apache":
        assert caggs == set()
    else:
        assert caggs == {"book_1m", "trades_1m", "book_1h", "trades_1h", "derivs_1m", "liquidations_1m"}


@pytest.mark.tsl
async def test_tsl_mode_creates_realtime_caggs_and_jobs(conn):
    rows = await conn.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = 'ops'")
    assert {r["view_name"]: r["materialized_only"] for r in rows} == {
        "book_1m": False, "trades_1m": False, "book_1h": False, "trades_1h": False,
        "derivs_1m": False, "liquidations_1m": False}
    jobs = await conn.fetch("SELECT proc_name, relation FROM ops.policy_jobs")
    by_kind: dict[str, set[str]] = {}
    for j in jobs:
        by_kind.setdefault(j["proc_name"], set()).add(j["relation"].removeprefix("ops."))
    assert by_kind["policy_refresh_continuous_aggregate"] == {"book_1m", "trades_1m", "book_1h", "trades_1h",
                                                              "derivs_1m", "liquidations_1m"}
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


async def test_readonly_role_reads_but_cannot_write(conn, db_dsn):
    await migrate(conn, readonly_password="ro-test-Secret-7", log=lambda _: None)
    ro = await asyncpg.connect(with_user(db_dsn, "tower_readonly", "ro-test-Secret-7"))
    try:
        assert await ro.fetchval("SELECT count(*) FROM ops.features_1m") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ro.execute("INSERT INTO ops.instruments (venue, symbol, asset, quote) VALUES ('x', 'y', 'z', 'q')")
    finally:
        await ro.close()
