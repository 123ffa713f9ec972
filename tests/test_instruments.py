"""The instrument universe as a desk sees it: symbols checked against the venues' own lists (real HTTP on
loopback), instruments active only once their data arrives, `tower instruments list|activate|deactivate|
sync`, `--symbols all`, no REST guessed from `--ws-url`, a run that never connected failing, and jobs that
score and alert only what is ingested."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from ingest.sim.binance_server import BinanceServer, agg_trade, book_ticker
from ingest.sim.bybit_server import BybitServer
from ingest.sim.hyperliquid_server import HyperliquidServer, bbo, perp_asset, trade
from ingest.sim.okx_server import OkxServer
from tests.support.ingest_helpers import NOW_MS, env, wait_until
from tower.cli import main

ACTIVE_SQL = (
    "SELECT coalesce(array_agg(venue || ' ' || symbol ORDER BY venue, symbol), '{}') FROM ops.instruments WHERE active"
)


def ingest_cli(*args: str):
    return asyncio.create_task(asyncio.to_thread(main, ["ingest", *args]))


async def test_a_typo_is_refused_at_start_naming_it(monkeypatch, conn, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    binance, hl = await BinanceServer().start(), await HyperliquidServer().start()
    try:
        code = await ingest_cli(
            "binance", "--symbols", "BTCUSDT,BTCUSTD", "--ws-url", binance.root, "--rest-url", binance.rest_url,
            "--duration", "1",
        )  # fmt: skip
        assert code == 2
        assert "binance: unknown symbol BTCUSTD: not in the venue's instrument list" in capsys.readouterr().err
        code = await ingest_cli(
            "hyperliquid", "--symbols", "BTC,ETHH", "--ws-url", hl.url, "--rest-url", hl.rest_url, "--duration", "1"
        )
        assert code == 2
        assert "hyperliquid: unknown symbol ETHH" in capsys.readouterr().err
        assert [(r.method, r.path) for r in hl.rest.requests] == [("POST", "/info")]
        assert binance.connections == 0 and hl.connections == 0  # refused before connecting
    finally:
        await binance.stop()
        await hl.stop()
    assert await conn.fetchval("SELECT count(*) FROM ops.instruments WHERE symbol IN ('BTCUSTD', 'ETHH')") == 0


async def test_venue_rest_down_warns_and_activates_only_what_delivers(monkeypatch, conn, db_dsn, tmp_path, caplog):
    env(monkeypatch, db_dsn, tmp_path)
    caplog.set_level(logging.WARNING, "ingest")
    binance = await BinanceServer().start()
    binance.rest_down = True
    try:
        run = ingest_cli(
            "binance", "--symbols", "BTCUSDT,ETHUSDT", "--ws-url", binance.root, "--rest-url", binance.rest_url,
            "--no-derivs", "--duration", "3",
        )  # fmt: skip
        await binance.wait_subscribed("btcusdt@aggTrade")
        await binance.wait_subscribed("btcusdt@bookTicker")
        assert await conn.fetchval(ACTIVE_SQL) == []  # started, subscribed, no data yet: nothing active
        await binance.publish(agg_trade("BTCUSDT", 1, "91000", "0.5", NOW_MS, buyer_is_maker=False))
        assert await wait_until(conn, ACTIVE_SQL, ["binance BTCUSDT"]) == ["binance BTCUSDT"]
        assert await run == 0
    finally:
        await binance.stop()
    assert "cannot read binance's instrument list from" in caplog.text
    assert "going on without checking the symbols" in caplog.text
    assert await conn.fetchval(ACTIVE_SQL) == ["binance BTCUSDT"]  # ETHUSDT never delivered: inactive
    row = await conn.fetchrow("SELECT first_data_at, asset FROM ops.instruments WHERE symbol = 'BTCUSDT' AND active")
    assert row["first_data_at"] is not None and row["asset"] == "BTC"


async def test_symbols_all_ingests_every_listed_perpetual(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    bybit = await BybitServer(page_size=2).start()
    bybit.listed[2]["status"] = "PreLaunch"  # SOLUSDT listed, not trading yet: not ingested
    try:
        run = ingest_cli(
            "bybit", "--symbols", "all", "--ws-url", bybit.url, "--rest-url", bybit.rest_url, "--duration", "2"
        )
        await bybit.wait_subscribed("publicTrade.BTCUSDT")
        await bybit.wait_subscribed("publicTrade.ETHUSDT")
        subscribed = {t for c in bybit.clients for t in c.subs}
        assert await run == 0
    finally:
        await bybit.stop()
    assert {t.rpartition(".")[2] for t in subscribed} == {"BTCUSDT", "ETHUSDT"}  # no SOLUSDT, no dated future
    pages = [p for p in bybit.rest_requests if p.startswith("/v5/market/instruments-info")]
    assert len(pages) == 4  # two for --symbols all, two for the check: the 4 entries come 2 per page
    assert "cursor=page-2" in pages[1]


async def test_sync_updates_sizes_and_deactivates_delisted(monkeypatch, conn, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    binance, okx, hl = await BinanceServer().start(), await OkxServer().start(), await HyperliquidServer().start()
    for venue, symbol in (
        ("binance", "BTCUSDT"),
        ("binance", "ETHUSDT"),
        ("binance", "SOLUSDT"),
        ("hyperliquid", "SOL"),
    ):
        assert await asyncio.to_thread(main, ["instruments", "activate", venue, symbol]) == 0
    binance.listed = [s for s in binance.listed if s["symbol"] != "SOLUSDT"]  # gone from the list
    binance.listed[1]["status"] = "SETTLING"  # ETHUSDT being delisted
    binance.listed[0]["filters"][0]["tickSize"] = "0.50"
    okx.contract_values["SOL-USDT-SWAP"] = "10"
    hl.universe[2] = perp_asset("SOL", 2, delisted=True)
    try:
        assert await asyncio.to_thread(main, ["instruments", "sync", "binance", "--rest-url", binance.rest_url]) == 0
        out = capsys.readouterr().out
        assert "binance: 2 perpetuals listed, 1 open for trading" in out  # the quarterly contract is no perp
        assert "deactivated (delisted, not trading or no longer listed): ETHUSDT, SOLUSDT" in out
        assert await asyncio.to_thread(main, ["instruments", "sync", "okx", "--rest-url", okx.rest_url]) == 0
        assert await asyncio.to_thread(main, ["instruments", "sync", "hyperliquid", "--rest-url", hl.rest_url]) == 0
    finally:
        await binance.stop()
        await okx.stop()
        await hl.stop()
    rows = {
        (r["venue"], r["symbol"]): (r["active"], r["status"], r["tick_size"], r["contract_size"], r["deactivated_by"])
        for r in await conn.fetch(
            "SELECT venue, symbol, active, status, tick_size, contract_size, deactivated_by FROM ops.instruments"
        )
    }
    assert rows[("binance", "BTCUSDT")] == (True, "TRADING", 0.5, 1.0, None)
    assert rows[("binance", "ETHUSDT")] == (False, "SETTLING", 0.01, 1.0, "sync")
    assert rows[("binance", "SOLUSDT")][:2] == (False, "not listed")
    assert ("binance", "BTCUSDT_260327") not in rows
    assert rows[("okx", "SOL-USDT-SWAP")] == (False, "live", 0.001, 10.0, None)  # listed, not activated by sync
    assert rows[("hyperliquid", "SOL")] == (False, "delisted", 0.0001, 1.0, "sync")
    assert rows[("hyperliquid", "BTC")][1:3] == ("listed", 10.0**-1)  # szDecimals 5: one price decimal


async def test_activate_deactivate_and_a_users_choice_outlasts_data(monkeypatch, conn, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    assert await asyncio.to_thread(main, ["instruments", "activate", "binance", "ETHUSDT"]) == 0
    assert await conn.fetchval(ACTIVE_SQL) == ["binance ETHUSDT"]
    assert await asyncio.to_thread(main, ["instruments", "deactivate", "binance", "ETHUSDT"]) == 0
    assert await asyncio.to_thread(main, ["instruments", "activate", "binance", "ETHUSDX"]) == 2
    assert "no instrument binance ETHUSDX in ops.instruments" in capsys.readouterr().err
    binance = await BinanceServer().start()
    try:
        run = ingest_cli("binance", "--symbols", "ETHUSDT,BTCUSDT", "--ws-url", binance.root, "--duration", "2")
        await binance.wait_subscribed("ethusdt@bookTicker")
        await binance.publish(book_ticker("ETHUSDT", 1, "3000.4", "5", "3000.6", "6", NOW_MS))
        await binance.publish(book_ticker("BTCUSDT", 1, "91000.1", "5", "91000.2", "6", NOW_MS))
        assert await run == 0
    finally:
        await binance.stop()
    assert await conn.fetchval(ACTIVE_SQL) == ["binance BTCUSDT"]  # ETHUSDT stays off: the user said so
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["instruments", "list", "--venue", "binance"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["venue", "symbol", "asset", "quote", "contract", "size", "tick", "size", "status",
                                "active", "last", "data"]  # fmt: skip
    cells = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    assert cells[("binance", "BTCUSDT")][-2] == "yes" and cells[("binance", "BTCUSDT")][-1].endswith("s")
    assert cells[("binance", "ETHUSDT")][-3:-1] == ["no", "(user)"]
    assert cells[("binance", "SOLUSDT")][-4:] == ["no", "(migration", "0700)", "never"]  # seeded, never delivered


async def test_ws_url_without_rest_url_sends_no_rest_request(monkeypatch, conn, db_dsn, tmp_path, caplog):
    env(monkeypatch, db_dsn, tmp_path)
    caplog.set_level(logging.WARNING, "ingest")
    binance = await BinanceServer().start()
    try:
        run = ingest_cli("binance", "--symbols", "BTCUSDT", "--ws-url", binance.root, "--duration", "2")
        await binance.wait_subscribed("btcusdt@markPrice@1s")
        assert await run == 0
    finally:
        await binance.stop()
    assert binance.rest_requests == []  # no exchangeInfo, fundingInfo or openInterest: not to it, not to mainnet
    notices = [r.getMessage() for r in caplog.records if "--rest-url" in r.getMessage()]
    assert notices == [
        "binance: --ws-url given without --rest-url, so no REST requests go to the venue: the instrument check, "
        "open-interest polls, funding intervals (fundingInfo) and depth books off; give --rest-url with the venue's "
        "REST root to turn them on"
    ]


async def test_a_run_that_never_connected_exits_4(monkeypatch, db_dsn, tmp_path, capsys):
    env(monkeypatch, db_dsn, tmp_path)
    code = await ingest_cli("hyperliquid", "--symbols", "BTC", "--ws-url", "ws://127.0.0.1:1/ws", "--duration", "1")
    assert code == 4
    assert "tower ingest: never connected to hyperliquid (ws://127.0.0.1:1/ws)" in capsys.readouterr().err


async def test_jobs_score_and_alert_only_what_is_ingested(monkeypatch, conn, db_dsn, tmp_path):
    """A site ingesting only Binance BTCUSDT and Hyperliquid BTC sees no scores or events for anything else."""
    env(monkeypatch, db_dsn, tmp_path)
    monkeypatch.delenv("TOWER_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("TOWER_ALERT_SLACK_URL", raising=False)
    binance, hl = await BinanceServer().start(), await HyperliquidServer().start()
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[[venues]]\nname = "binance"\nsymbols = ["BTCUSDT"]\nws_url = "{binance.root}"\n'
        f'rest_url = "{binance.rest_url}"\n\n'
        f'[[venues]]\nname = "hyperliquid"\nsymbols = ["BTC"]\nws_url = "{hl.url}"\nrest_url = "{hl.rest_url}"\n'
    )
    try:
        run = asyncio.create_task(asyncio.to_thread(main, ["ingest", "--config", str(config), "--duration", "3"]))
        await binance.wait_subscribed("btcusdt@bookTicker")
        await hl.wait_subscribed("bbo", "BTC")
        for i in range(20):
            await binance.publish(book_ticker("BTCUSDT", i + 1, "91000.1", "5", "91000.2", "6", NOW_MS + i))
            await binance.publish(agg_trade("BTCUSDT", i + 1, "91000.1", "0.1", NOW_MS + i, buyer_is_maker=i % 2 == 0))
            await hl.publish("bbo", "BTC", bbo("BTC", NOW_MS + i, ("91001", "2"), ("91002", "3")))
            await hl.publish("trades", "BTC", [trade("BTC", "B", "91001", "0.1", NOW_MS + i, i + 1)])
        assert await run == 0
    finally:
        await binance.stop()
        await hl.stop()
    assert await conn.fetchval(ACTIVE_SQL) == ["binance BTCUSDT", "hyperliquid BTC"]
    now = datetime.fromtimestamp(NOW_MS / 1000 + 180, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # data minute closed
    assert await asyncio.to_thread(main, ["jobs", "--once", "--now", now]) == 0
    scored = await conn.fetch("SELECT DISTINCT venue, symbol FROM ops.risk_scores ORDER BY 1, 2")
    assert [tuple(r) for r in scored] == [("binance", "BTCUSDT"), ("hyperliquid", "BTC")]
    others = "symbol <> '*' AND NOT ((venue, symbol) IN (('binance', 'BTCUSDT'), ('hyperliquid', 'BTC')))"
    assert await conn.fetchval(f"SELECT count(*) FROM ops.risk_events WHERE {others}") == 0
