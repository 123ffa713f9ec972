"""The commands as a user runs them: `tower ingest`, `tower ingest --config`, `tower status`, `tower demo`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ingest.sim import demo
from ingest.sim.binance_server import BinanceServer, agg_trade, book_ticker
from ingest.sim.hyperliquid_server import HyperliquidServer, trade
from tests.support.depth import DEPTH_COLUMNS, Depth, sample
from tests.support.fixtures import activate
from tests.support.ingest_helpers import NOW_MS, env
from tests.support.tsdb import with_user
from tower.cagg_refresh import refresh_feature_caggs
from tower.cli import main


async def test_ingest_with_duration_flushes_and_exits_zero(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    server = await BinanceServer().start()
    try:
        run = asyncio.create_task(
            asyncio.to_thread(
                main, ["ingest", "binance", "--symbols", "BTCUSDT,ETHUSDT", "--ws-url", server.root, "--duration", "2"]
            )
        )
        await server.wait_subscribed("ethusdt@aggTrade")
        await server.wait_subscribed("ethusdt@bookTicker")
        for a in range(1, 51):
            await server.publish(agg_trade("ETHUSDT", a, "3000.5", "0.1", NOW_MS + a, buyer_is_maker=a % 2 == 0))
        await server.publish(book_ticker("ETHUSDT", 1, "3000.4", "5", "3000.6", "6", NOW_MS))
        assert await run == 0
    finally:
        await server.stop()
    # everything received before the deadline was written before exit: no waiting here
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades WHERE symbol = 'ETHUSDT'") == 50
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades WHERE side = 'sell'") == 25
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_book_l1") == 1
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM ops.instruments WHERE venue = 'binance' AND symbol = 'ETHUSDT' AND asset = 'ETH'"
        )
        == 1
    )


async def test_config_file_runs_several_venues(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    binance, hl = await BinanceServer().start(), await HyperliquidServer().start()
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[[venues]]\nname = "binance"\nsymbols = ["BTCUSDT"]\nws_url = "{binance.root}"\n\n'
        f'[[venues]]\nname = "hyperliquid"\nsymbols = ["BTC", "AVAX"]\nws_url = "{hl.url}"\n'
    )
    try:
        run = asyncio.create_task(asyncio.to_thread(main, ["ingest", "--config", str(config), "--duration", "2"]))
        await binance.wait_subscribed("btcusdt@aggTrade")
        await hl.wait_subscribed("trades", "AVAX")
        await binance.publish(agg_trade("BTCUSDT", 1, "91000", "1", NOW_MS, buyer_is_maker=True))
        await hl.publish("trades", "AVAX", [trade("AVAX", "B", "35.5", "10", NOW_MS, 9)])
        assert await run == 0
    finally:
        await binance.stop()
        await hl.stop()
    rows = await conn.fetch("SELECT venue, symbol, side FROM ops.raw_trades ORDER BY venue")
    assert [tuple(r) for r in rows] == [("binance", "BTCUSDT", "sell"), ("hyperliquid", "AVAX", "buy")]


def test_bad_config_is_a_clear_error(monkeypatch, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text('[[venues]]\nname = "binance"\nsymbols = ["BTCUSDT"]\nws_url = "http://x"\n')
    assert main(["ingest", "--config", str(config)]) == 2
    assert "venues.0.ws_url" in capsys.readouterr().err
    assert main(["ingest", "hyperliquid"]) == 2
    assert "--symbols is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("TOWER_INGEST_SPILL_MAX_MB", "lots", "TOWER_INGEST_SPILL_MAX_MB: Input should be a valid integer"),
        ("TOWER_INGEST_SPILL_MAX_MB", "-1", "TOWER_INGEST_SPILL_MAX_MB: Input should be greater than or equal to 0"),
        ("TOWER_INGEST_OVERLOAD_ROWS", "600000", "TOWER_INGEST_OVERLOAD_ROWS: must be below TOWER_INGEST_MEMORY_ROWS"),
    ],
)
def test_bad_overload_settings_are_a_clear_error(monkeypatch, db_dsn, tmp_path, capsys, name, value, says):
    env(monkeypatch, db_dsn, tmp_path)
    monkeypatch.setenv(name, value)
    assert main(["ingest", "binance", "--symbols", "BTCUSDT", "--ws-url", "ws://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


async def test_status_reports_each_feed(monkeypatch, conn, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    now = datetime.now(UTC)
    await conn.executemany(
        "INSERT INTO ops.raw_trades (venue, symbol, ts, recv_ts, trade_id, price, qty, side) "
        "VALUES ('binance', 'BTCUSDT', $1, $1, $2, 1, 1, 'buy')",
        [(now - timedelta(seconds=30 + i), str(i)) for i in range(10)],
    )
    await activate(conn, [("binance", "BTCUSDT"), ("hyperliquid", "BTC")])  # BTC: active, never delivered
    await conn.execute(
        "INSERT INTO ops.raw_derivs (venue, symbol, ts, recv_ts, mark_px) VALUES ('binance', 'BTCUSDT', $1, $1, 91000)",
        now - timedelta(seconds=5),
    )
    await conn.execute(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, cause) VALUES ('binance', 'BTCUSDT', 'aggTrade', 'id_jump')"
    )
    # Full-book depth samples for Binance BTC only, the last one 3 s ago (Hyperliquid BTC has no full book).
    await conn.copy_records_to_table(
        "raw_book_depth",
        schema_name="ops",
        columns=DEPTH_COLUMNS,
        records=[
            sample("binance", "BTCUSDT", now - timedelta(seconds=s), 91000.0, Depth(2e6, 0.4)) for s in (63, 33, 3)
        ],
    )
    await conn.execute(
        "INSERT INTO ops.connection_events (venue, conn_id, event) "
        "VALUES ('binance', 'c1', 'reconnect_attempt'), ('binance', 'c2', 'reconnect_attempt')"
    )
    # The overload policy's records: 120 + 30 BTC book updates conflated, one reader paused for 2.5 s.
    await conn.executemany(
        "INSERT INTO ops.connection_events (venue, conn_id, event, symbol, since, conflated, ts) "
        "VALUES ('binance', 'writer:ingest', 'conflating', $1, $2, $3, $4)",
        [("BTCUSDT", now - timedelta(seconds=20), 120, now - timedelta(seconds=10)), ("BTCUSDT", now, 30, now)],
    )
    await conn.execute(
        "INSERT INTO ops.connection_events (venue, conn_id, event, since, ts) "
        "VALUES ('binance', 'c1', 'paused', $1, $2)",
        now - timedelta(seconds=2.5),
        now,
    )
    # Books every second for the last 2 closed minutes (complete), one more minute under the open gap's time.
    minute = now.replace(second=0, microsecond=0)
    await conn.executemany(
        "INSERT INTO ops.raw_book_l1 (venue, symbol, ts, recv_ts, bid_px, bid_qty, ask_px, ask_qty, update_id) "
        "VALUES ('binance', 'BTCUSDT', $1, $3, 1, 1, 1.1, 1, $2)",
        [(minute - timedelta(seconds=s), s, now - timedelta(minutes=5)) for s in range(1, 181)],
    )
    await conn.execute(
        "UPDATE ops.feed_gaps SET from_ts = $1, to_ts = $1 WHERE venue = 'binance'", minute - timedelta(seconds=150)
    )
    await refresh_feature_caggs(conn, minute - timedelta(minutes=4), minute)
    assert await asyncio.to_thread(main, ["status"]) == 0
    out = capsys.readouterr().out
    assert "complete 24h" in out.splitlines()[0]
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines()[2:]}
    assert out.splitlines()[0].split()[-2:] == ["last", "depth"]
    age, derivs_age, per_min, reconnects, gaps, rejected, complete, conflated, paused, depth_age = lines[
        ("binance", "BTCUSDT")
    ]
    assert (conflated, paused) == ("150", "2.5s")
    assert complete == f"{100 * 2 / 3:.1f}%"  # of the 3 minutes since its first data, not of all 1440
    assert age.endswith("s") and 30 <= float(age[:-1]) < 120
    assert derivs_age.endswith("s") and 5 <= float(derivs_age[:-1]) < 30
    assert (per_min, reconnects, gaps, rejected) == ("38.0", "2", "1", "0")  # 10 trades + 180 books in 5 min
    assert depth_age.endswith("s") and 3 <= float(depth_age[:-1]) < 30  # the newest sample's age
    assert lines[("hyperliquid", "BTC")][:2] == ["never", "never"]
    assert lines[("hyperliquid", "BTC")][-2:] == ["0", "0.0s"]
    assert len(lines[("hyperliquid", "BTC")]) == 9  # no full book: the depth column is blank


async def test_demo_is_labelled_simulated_and_covers_all_four_venues(monkeypatch, conn, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    monkeypatch.setattr(demo, "DISCONNECT_EVERY_S", 1e9)  # a simulated venue restart may really lose trades
    assert await asyncio.to_thread(main, ["demo", "--duration", "3"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out.splitlines()[1]
    four = ["binance", "bybit", "hyperliquid", "okx"]
    for table in ("raw_book_l1", "raw_derivs"):
        venues = await conn.fetch(f"SELECT venue, count(*) AS n FROM ops.{table} GROUP BY venue ORDER BY venue")
        assert [r["venue"] for r in venues] == four and all(r["n"] > 0 for r in venues), table
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_book_l1 WHERE bid_px >= ask_px") == 0
    depth = await conn.fetch("SELECT DISTINCT venue, symbol FROM ops.raw_book_depth")
    assert len(depth) == 12  # every simulated venue serves depth books for all three assets
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0
    # Binance numbers trades per symbol: contiguous ids, so no gap is recorded.
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades WHERE venue = 'binance'") > 0
    assert await conn.fetch("SELECT venue, symbol, stream, missing FROM ops.feed_gaps") == []
    # The same asset lines up across venues once OKX contracts are converted: depth in base units.
    depth = await conn.fetch(
        "SELECT venue, avg(bid_qty * bid_px) AS notional FROM ops.raw_book_l1 WHERE symbol LIKE 'BTC%' GROUP BY venue"
    )
    notional = {r["venue"]: r["notional"] for r in depth}
    assert 0.2 < notional["okx"] / notional["binance"] < 5


def test_bench_parse_measures_every_venue_and_kind(capsys):
    import re

    assert main(["bench", "parse", "--frames", "200", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    found = set()
    for line in lines:
        m = re.fullmatch(
            r"RESULT venue=(\w+) kind=(\w+) frames_per_s=(\d+) us_per_frame=([\d.]+) "
            r"vs_binance_trade=([\d.]+)",
            line,
        )
        assert m, line
        assert int(m.group(3)) > 0
        found.add((m.group(1), m.group(2)))
    assert found == {(v, k) for v in ("binance", "hyperliquid", "bybit", "okx") for k in ("trade", "book", "derivs")}


BENCH_RESULT = (
    r"RESULT sustained_msgs_per_s=(\d+) burst_msgs_per_s=(\d+) copy_rows_per_s=(\d+) ratio=(\d+\.\d\d) "
    r"p99_ms=(\d+)"
)


async def test_bench_prints_the_result_line_and_leaves_no_rows(monkeypatch, conn, db_dsn, tmp_path, capsys):
    import re

    env(monkeypatch, db_dsn, tmp_path)
    args = ["bench", "ingest", "--seconds", "0.5", "--step-seconds", "1", "--start-rate", "2000", "--max-rate", "4000"]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(BENCH_RESULT, out[-1])
    assert m, out[-1]
    sustained, burst, ceiling = int(m[1]), int(m[2]), int(m[3])
    assert sustained in (0, 2000, 4000) and burst > 0 and ceiling > 0
    assert float(m[4]) == round(sustained / ceiling, 2)
    assert [line.split(":")[0] for line in out if line.startswith("step ")] == ["step 1", "step 2"][
        : 1 + (sustained > 0)
    ]
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 0  # benchmark rows are cleaned up
    assert await conn.fetchval("SELECT to_regclass('ops.bench_copy_ceiling')") is None  # scratch table dropped


async def test_bench_reports_a_step_whose_writer_is_full_as_failed(monkeypatch, conn, db_dsn, tmp_path, capsys):
    import re

    env(monkeypatch, db_dsn, tmp_path)
    # Batches only close when full (5000 rows), and more than 1000 rows in memory is a full writer: the reader
    # waits for every commit (a database that answers is no reason to spill).
    monkeypatch.setenv("TOWER_INGEST_MEMORY_ROWS", "1000")
    monkeypatch.setenv("TOWER_INGEST_FLUSH_MS", "60000")
    args = ["bench", "ingest", "--seconds", "0.2", "--step-seconds", "1", "--rate", "20000", "--processes", "1"]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    step = next(line for line in out if line.startswith("step 1: 20,000 msgs/s"))
    assert ": FAIL (" in step and "readers paused" in step.split(": FAIL (", 1)[1].split(")", 1)[1], step
    assert "spilled 0," in step, step
    m = re.fullmatch(BENCH_RESULT, out[-1])
    assert m and m[1] == "0" and m[4] == "0.00" and m[5] == "0", out[-1]
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 0


async def test_bench_workers_spill_privately_and_leave_nothing_behind(monkeypatch, conn, db_dsn, tmp_path, capsys):
    from ingest.bench.throughput import worker_settings
    from ingest.settings import IngestSettings

    # Run from a checkout-like folder with no spill directory configured: nothing may land in it.
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    monkeypatch.delenv("TOWER_INGEST_SPILL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "tmp"
    runs.mkdir()
    monkeypatch.setenv("TMPDIR", str(runs))
    assert (
        await asyncio.to_thread(
            main, ["bench", "ingest", "--seconds", "0.5", "--step-seconds", "1", "--rate", "4000", "--processes", "2"]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("RESULT sustained_msgs_per_s=")
    assert any(line.startswith("step 1: 4,000 msgs/s for 1 s: ") for line in out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no .tower-spill in the working folder
    assert list(runs.iterdir()) == []  # the private spill directory is gone
    paths = {worker_settings(IngestSettings(), tmp_path, i).writer_config("bench").spill_path for i in range(2)}
    assert len(paths) == 2  # one spill file per worker


async def test_bench_refuses_a_ceiling_beside_another_sessions_replay(db_dsn):
    import asyncpg

    from ingest.bench.throughput import replays_elsewhere

    assert await replays_elsewhere(db_dsn, wait_s=0) == []
    other = await asyncpg.connect(db_dsn)
    try:
        # What the writer's replay path looks like from pg_stat_activity, held for a few seconds.
        replay = asyncio.create_task(
            other.execute(
                "CREATE TEMP TABLE stage_raw_trades (x int); SELECT pg_sleep(3) FROM stage_raw_trades RIGHT JOIN "
                "(VALUES (1)) v(y) ON true"
            )
        )
        await asyncio.sleep(0.5)
        busy = await replays_elsewhere(db_dsn, wait_s=0.5)
        assert len(busy) == 1 and "stage_raw_trades" in busy[0], busy
        await replay
        assert await replays_elsewhere(db_dsn, wait_s=0) == []
    finally:
        await other.close()


def test_the_example_config_is_valid():
    from pathlib import Path

    from ingest.settings import read_config

    venues = read_config(Path(__file__).parent.parent / "ingest" / "ingest.example.toml")
    assert [(v.name, v.symbols) for v in venues] == [
        ("binance", ["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        ("hyperliquid", ["BTC", "ETH", "SOL"]),
        ("bybit", ["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        ("okx", ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"]),
    ]


def test_rest_url_is_checked(monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["ingest", "okx", "--symbols", "BTC-USDT-SWAP", "--rest-url", "ftp://x"]) == 2
    assert "--rest-url: must start with http:// or https://" in capsys.readouterr().err


async def test_processes_split_the_symbols_and_every_row_lands_once(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    server = await BinanceServer().start()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for i, s in enumerate(symbols):
        server.open_interest[s] = (f"{1000 + i}.5", NOW_MS)
    try:
        run = asyncio.create_task(
            asyncio.to_thread(
                main,
                [
                    "ingest",
                    "binance",
                    "--symbols",
                    ",".join(symbols),
                    "--ws-url",
                    server.root,
                    "--rest-url",
                    server.root.replace("ws://", "http://"),
                    "--processes",
                    "2",
                    "--duration",
                    "8",
                ],
            )
        )
        for s in symbols:
            await server.wait_subscribed(f"{s.lower()}@aggTrade")
        for s in symbols:
            for a in range(1, 21):
                await server.publish(agg_trade(s, a, "100.5", "0.1", NOW_MS + a, buyer_is_maker=False))
        assert await run == 0
    finally:
        await server.stop()
    rows = await conn.fetch(
        "SELECT symbol, count(*) AS n, count(DISTINCT trade_id) AS ids FROM ops.raw_trades "
        "GROUP BY symbol ORDER BY symbol"
    )
    assert [tuple(r) for r in rows] == [(s, 20, 20) for s in sorted(symbols)]
    # Two aggTrade connections on the /market route: one per worker process.
    connects = await conn.fetchval(
        "SELECT count(DISTINCT conn_id) FROM ops.connection_events "
        "WHERE event = 'connect' AND url LIKE '%/market/%' AND conn_id LIKE '%aggTrade%'"
    )
    assert connects == 2
    # Each worker polls open interest for its own symbols only, once per symbol and venue time.
    oi = await conn.fetch("SELECT symbol, open_interest FROM ops.raw_derivs ORDER BY symbol")
    assert [tuple(r) for r in oi] == [("BTCUSDT", 1000.5), ("ETHUSDT", 1001.5), ("SOLUSDT", 1002.5)]


def test_split_spreads_each_venues_symbols_round_robin():
    from ingest.processes import split
    from ingest.settings import VenueConfig

    groups = split(
        [VenueConfig(name="binance", symbols=["A", "B", "C"]), VenueConfig(name="hyperliquid", symbols=["X"])], 2
    )
    assert [[(c.name, c.symbols) for c in g] for g in groups] == [
        [("binance", ["A", "C"]), ("hyperliquid", ["X"])],
        [("binance", ["B"])],
    ]
    assert len(split([VenueConfig(name="binance", symbols=["A"])], 4)) == 1


def test_symbols_that_are_not_venue_symbols_are_refused(monkeypatch, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    assert main(["ingest", "binance", "--symbols", "BTCUSDT,BTC'; DROP TABLE ops.raw_trades;--"]) == 2
    err = capsys.readouterr().err
    assert '--symbols: not a venue symbol: "BTC\'; DROP TABLE ops.raw_trades;--"' in err


def test_ping_settings_are_checked_against_each_venues_idle_limit(monkeypatch, capsys):
    from ingest.settings import IngestSettings, VenueConfig
    from ingest.venues import make_venue

    monkeypatch.setenv("TOWER_DSN", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("TOWER_INGEST_OKX_PING_S", "45")
    assert main(["ingest", "okx", "--symbols", "BTC-USDT-SWAP", "--processes", "2"]) == 2
    assert (
        "TOWER_INGEST_OKX_PING_S: must be > 0 and < 30 (okx closes connections silent for 30 s)"
        in capsys.readouterr().err
    )
    monkeypatch.setenv("TOWER_INGEST_OKX_PING_S", "soon")
    assert main(["ingest", "okx", "--symbols", "BTC-USDT-SWAP"]) == 2
    assert "TOWER_INGEST_OKX_PING_S: not a number of seconds: 'soon'" in capsys.readouterr().err

    monkeypatch.delenv("TOWER_INGEST_OKX_PING_S")
    monkeypatch.setenv("TOWER_INGEST_HYPERLIQUID_PING_S", "5")
    settings = IngestSettings()

    def heartbeat(name: str) -> float | None:
        return make_venue(VenueConfig(name=name, symbols=["X"]), settings).heartbeat_s

    assert (heartbeat("hyperliquid"), heartbeat("okx"), heartbeat("bybit"), heartbeat("binance")) == (5, 20, 20, None)


def test_only_binance_connections_rotate_before_the_venues_age_limit():
    from ingest.settings import IngestSettings
    from ingest.venues import REGISTRY

    settings = IngestSettings()
    assert {name: settings.runtime_config(cls).rotate_after_s for name, cls in REGISTRY.items()} == {
        "binance": 23 * 3600,
        "hyperliquid": None,
        "bybit": None,
        "okx": None,
    }


async def test_ingest_as_a_role_that_may_not_write_stops_with_the_grant_it_lacks(
    bare_role, monkeypatch, conn, db_dsn, tmp_path, capsys
):
    """Retrying a permission error would look like a database that is away, for ever."""
    role, password = bare_role
    await conn.execute(f"GRANT USAGE ON SCHEMA ops TO {role}")
    await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA ops TO {role}")
    env(monkeypatch, with_user(db_dsn, role, password), tmp_path)
    server = await BinanceServer().start()
    try:
        code = await asyncio.to_thread(
            main, ["ingest", "binance", "--symbols", "BTCUSDT", "--ws-url", server.root, "--duration", "30"]
        )
    finally:
        await server.stop()
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert f"role {role} may not INSERT into ops." in err and "ops.raw_trades" in err and "GRANT INSERT ON" in err
    assert "Traceback" not in err
