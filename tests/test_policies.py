"""Retention, compression and refresh policies: one settings table, enforced under both licenses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fixtures import insert_trades
from tower.cli import main
from tower.policies import PolicyError, set_policy


async def setting(conn, relation, column):
    return await conn.fetchval(f"SELECT {column} FROM ops.policy_settings WHERE relation = $1", relation)


async def test_retention_shorter_than_refresh_window_is_refused(conn):
    with pytest.raises(PolicyError, match=r"retention of ops.raw_trades .* must be longer than the refresh"):
        await set_policy(conn, "raw_trades", {"retention": timedelta(hours=1)})
    assert await setting(conn, "ops.raw_trades", "retention") == timedelta(days=30)


async def test_refresh_window_of_one_bucket_is_refused(conn):
    with pytest.raises(PolicyError, match="at least two"):
        await set_policy(conn, "trades_1h", {"refresh_start_offset": timedelta(hours=2)})


async def test_unknown_relation_and_wrong_kind_are_clear_errors(conn):
    with pytest.raises(PolicyError, match="unknown relation 'ops.nope'; known: .*ops.raw_trades"):
        await set_policy(conn, "nope", {"retention": timedelta(days=1)})
    with pytest.raises(PolicyError, match="continuous aggregates only"):
        await set_policy(conn, "raw_trades", {"refresh_every": timedelta(minutes=5)})


async def test_set_policy_updates_settings(conn, license):
    result = await set_policy(conn, "ops.raw_book_l1", {"retention": timedelta(days=3)})
    assert await setting(conn, "ops.raw_book_l1", "retention") == timedelta(days=3)
    retention = [r for r in result if r["policy"] == "retention"]
    assert len(retention) == 1
    if license == "apache":
        assert retention[0]["action"] == "tower-jobs"
    else:
        assert retention[0]["action"] == "replaced"


@pytest.mark.tsl
async def test_tsl_set_policy_changes_the_timescaledb_jobs(conn):
    await set_policy(conn, "raw_trades", {"retention": timedelta(days=14), "compress_after": timedelta(hours=6)})
    await set_policy(conn, "trades_1m", {"refresh_every": timedelta(minutes=5)})
    jobs = {
        (r["proc_name"], r["relation"].removeprefix("ops.")): r
        for r in await conn.fetch("SELECT proc_name, relation, schedule_interval, config FROM ops.policy_jobs")
    }
    import json

    def cfg(key):
        c = jobs[key]["config"]
        return json.loads(c) if isinstance(c, str) else c

    assert cfg(("policy_retention", "raw_trades"))["drop_after"] == "14 days"
    assert cfg(("policy_compression", "raw_trades"))["compress_after"] == "06:00:00"
    assert jobs[("policy_refresh_continuous_aggregate", "trades_1m")]["schedule_interval"] == timedelta(minutes=5)
    # Applying unchanged settings keeps the jobs as they are.
    again = await conn.fetch("SELECT * FROM ops.apply_policies('ops.raw_trades')")
    assert {r["action"] for r in again} == {"unchanged"}


async def old_and_new_trades(conn):
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    await insert_trades(
        conn,
        [
            ("binance", "BTCUSDT", old, old, "1", 100.0, 1.0, "buy"),
            ("binance", "BTCUSDT", now, now, "2", 100.0, 1.0, "buy"),
        ],
    )


async def test_retention_drops_old_chunks_in_both_modes(conn, license):
    await old_and_new_trades(conn)
    if license == "apache":
        result = await conn.fetch("SELECT * FROM ops.enforce_retention()")
        dropped = {r["relation"]: r["chunks_dropped"] for r in result}
        assert dropped["ops.raw_trades"] == 1
    else:
        # Under TSL the same setting is a TimescaleDB retention job; enforce_retention() leaves it to the job.
        assert await conn.fetch("SELECT * FROM ops.enforce_retention()") == []
        job = await conn.fetchval(
            "SELECT job_id FROM ops.policy_jobs WHERE proc_name = 'policy_retention' AND relation = 'ops.raw_trades'"
        )
        await conn.execute(f"CALL run_job({int(job)})")
    assert await conn.fetchval("SELECT array_agg(trade_id) FROM ops.raw_trades") == ["2"]


@pytest.mark.tsl
async def test_tsl_compression_job_compresses_and_data_stays_queryable(conn):
    now = datetime.now(UTC)
    rows = [
        ("binance", "BTCUSDT", now - timedelta(hours=5, seconds=i), now, str(i), 100.0 + i, 1.0, "buy")
        for i in range(500)
    ]
    await insert_trades(conn, rows)
    job = await conn.fetchval(
        "SELECT job_id FROM ops.policy_jobs WHERE proc_name = 'policy_compression' AND relation = 'ops.raw_trades'"
    )
    await conn.execute(f"CALL run_job({int(job)})")
    stats = await conn.fetchrow(
        "SELECT sum(number_compressed_chunks) AS n FROM hypertable_compression_stats('ops.raw_trades')"
    )
    assert stats["n"] >= 1
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 500


def test_cli_policies_show_and_set(db_dsn, monkeypatch, capsys, license):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    assert main(["policies", "set", "raw_trades", "--retention", "21d"]) == 0
    assert main(["policies", "show"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ops.raw_trades ") and "hypertable" in x)
    assert "21d" in line
    with pytest.raises(SystemExit):
        main(["policies", "set", "raw_trades", "--retention", "10x"])
    assert "bad duration '10x'" in capsys.readouterr().err
