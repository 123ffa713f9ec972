"""The writer's overload policy with a real database that is slow (a lock on the table) or away (a cut proxy)
and a real loopback venue: L1 conflated and counted, trades never dropped, the spill within its budget,
then the readers pause; each step recorded in ops.connection_events and /metrics."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import asyncpg
from prometheus_client import REGISTRY

from ingest.runtime import run_venue
from ingest.sim.binance_server import BinanceServer, agg_trade, book_ticker
from ingest.venues.binance import Binance
from ingest.writer import Writer, WriterConfig
from tests.support.ingest_helpers import FAST, running, wait_until
from tests.test_ingest_writer import T0, start_proxy, until, via

TRADES, BOOKS = 200, 2000


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def publish_flood(server: BinanceServer, trades: int, books_per_trade: int = 0) -> None:
    u = 0
    for a in range(1, trades + 1):
        await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=False))
        for _ in range(books_per_trade):
            u += 1
            await server.publish(book_ticker("BTCUSDT", u, "89999", "1", "90001", "1", T0 + u))


@asynccontextmanager
async def ingesting(dsn: str, tmp_path, config: WriterConfig):
    """The real service with a Binance connector for BTCUSDT against a loopback server."""
    server = await BinanceServer().start()
    try:
        venue = Binance(["BTCUSDT"], ws_url=server.root, derivs=False)
        async with running(dsn, [venue], tmp_path, writer_config=config) as run:
            await server.wait_subscribed("btcusdt@aggTrade")
            yield server, run
    finally:
        await server.stop()


@asynccontextmanager
async def session(dsn: str):
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def lock(conn: asyncpg.Connection, table: str) -> None:
    """An exclusive lock held by another session until it commits: the writer's COPY waits (the database is
    slow, not away: no error reaches the writer)."""
    await conn.execute(f"BEGIN; LOCK TABLE ops.{table} IN ACCESS EXCLUSIVE MODE")


def small_writer(tmp_path, spill_max_bytes: int) -> WriterConfig:
    """100 rows of memory and a small spill budget, quick retries: an outage reaches every step in moments."""
    return WriterConfig(
        spill_path=tmp_path / "spill.jsonl",
        batch_rows=50,
        flush_s=0.05,
        memory_rows=100,
        spill_max_bytes=spill_max_bytes,
        retry_initial_s=0.05,
        retry_cap_s=0.2,
    )


async def test_slow_database_conflates_l1_and_stores_every_trade(conn, db_dsn, tmp_path):
    config = WriterConfig(
        spill_path=tmp_path / "spill.jsonl",
        batch_rows=100,
        flush_s=0.05,
        overload_rows=300,
        conflation_report_s=0.5,
    )
    before = sample("tower_ingest_book_l1_conflated_total", venue="binance")
    async with session(db_dsn) as other, ingesting(db_dsn, tmp_path, config) as (server, run):
        await server.wait_subscribed("btcusdt@bookTicker")
        await lock(other, "raw_trades")
        await publish_flood(server, TRADES, BOOKS // TRADES)
        await until(lambda: run.writer.overloaded)
        await other.execute("COMMIT")  # the database is fast again: the backlog drains, conflation ends
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", TRADES)
        await wait_until(conn, "SELECT count(*) FROM ops.connection_events WHERE event = 'conflating'", bool)
        result = await run.finish()
    assert result.fully_written and not run.writer.stats["spilled_rows"]
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == TRADES
    stored_books = await conn.fetchval("SELECT count(*) FROM ops.raw_book_l1")
    events = await conn.fetch(
        "SELECT conn_id, symbol, since, ts, conflated, reason FROM ops.connection_events WHERE event = 'conflating'"
    )
    conflated = sum(e["conflated"] for e in events)
    assert conflated > 0 and stored_books < BOOKS
    assert stored_books + conflated == BOOKS, "every L1 update is stored or counted as conflated"
    assert all(e["symbol"] == "BTCUSDT" and e["since"] < e["ts"] and e["conn_id"] == "writer:spill" for e in events)
    assert "conflated to the latest" in events[0]["reason"]
    assert await conn.fetchval("SELECT max(update_id) FROM ops.raw_book_l1") == BOOKS, "the latest one is kept"
    assert sample("tower_ingest_book_l1_conflated_total", venue="binance") - before == conflated


async def test_slow_database_pauses_the_reader_instead_of_spilling(conn, db_dsn, tmp_path):
    config = WriterConfig(spill_path=tmp_path / "spill.jsonl", batch_rows=50, flush_s=0.05, memory_rows=200)
    pauses = sample("tower_ingest_reader_pauses_total", venue="binance")
    async with session(db_dsn) as other, ingesting(db_dsn, tmp_path, config) as (server, run):
        await lock(other, "raw_trades")
        flood = asyncio.create_task(publish_flood(server, 2000))
        await until(lambda: sample("tower_ingest_readers_paused", venue="binance") > 0)
        assert run.writer.spill_bytes() == 0, "a slow database is not what the spill file is for"
        await other.execute("COMMIT")
        await flood
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 2000)
        result = await run.finish()
    assert result.fully_written and not run.writer.stats["spilled_rows"]
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == 2000
    paused = await conn.fetch("SELECT since, ts, reason FROM ops.connection_events WHERE event = 'paused'")
    assert paused and all(p["since"] < p["ts"] for p in paused)
    assert "database slower than the feed" in paused[0]["reason"]
    assert sample("tower_ingest_reader_pauses_total", venue="binance") - pauses == len(paused)


async def test_spill_budget_reached_while_the_database_is_away_pauses_the_reader_and_loses_nothing(
    conn, db_dsn, tmp_path
):
    budget = 100_000  # bytes: about 900 spilled trades
    config = small_writer(tmp_path, budget)
    proxy = await start_proxy(db_dsn)
    try:
        async with ingesting(via(proxy, db_dsn), tmp_path, config) as (server, run):
            await proxy.cut()
            flood = asyncio.create_task(publish_flood(server, 3000))
            # Memory full, then the spill file up to its budget, then the reader stops reading.
            await until(
                lambda: (
                    run.writer.stats["spill_budget_full"] > 0
                    and sample("tower_ingest_readers_paused", venue="binance") > 0
                )
            )
            assert run.writer.stats["spilled_rows"] > 0
            assert 0 < run.writer.spill_bytes() <= budget
            await proxy.restore()
            await flood
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 3000, within_s=30)
            result = await run.finish()
    finally:
        await proxy.stop()
    assert result.fully_written
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == 3000
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 3000
    paused = await conn.fetch("SELECT reason FROM ops.connection_events WHERE event = 'paused'")
    assert any("spill budget used up while the database is away" in p["reason"] for p in paused)
    assert not list(tmp_path.glob("spill.jsonl*")), "the spill file is replayed and removed"


async def test_stopping_while_paused_with_the_database_away_keeps_everything_received(conn, db_dsn, tmp_path):
    """The worst case at shutdown: database away, spill budget used up, reader paused. Stopping must not
    wait for room that never comes; what was received goes to the spill file (past its budget) and the next
    start stores it: the trades stored are exactly 1..N, no hole."""
    config = small_writer(tmp_path, 10_000)
    proxy = await start_proxy(db_dsn)
    server = await BinanceServer().start()
    try:
        writer = Writer(via(proxy, db_dsn), config)
        await writer.start()
        stop = asyncio.Event()
        venue = Binance(["BTCUSDT"], ws_url=server.root, derivs=False)
        connector = asyncio.create_task(run_venue(venue, writer, FAST, stop))
        await server.wait_subscribed("btcusdt@aggTrade")
        await proxy.cut()
        flood = asyncio.create_task(publish_flood(server, 3000))
        await until(lambda: writer.stats["spill_budget_full"] > 0 and writer.stats["paused_puts"] > 0)
        stop.set()
        await asyncio.wait_for(connector, 20)  # a guard against a hang, not a speed check
        assert not await writer.close(drain_timeout_s=0.5), "the database is still away: kept on disk"
        flood.cancel()
        await asyncio.gather(flood, return_exceptions=True)
    finally:
        await server.stop()
        await proxy.stop()
    assert writer.spill_bytes() > config.spill_max_bytes, "shutdown keeps what memory held, past the budget"
    again = Writer(db_dsn, config)
    await again.start()
    assert await again.close()
    ids = [int(r["trade_id"]) for r in await conn.fetch("SELECT trade_id FROM ops.raw_trades")]
    assert sorted(ids) == list(range(1, len(ids) + 1)) and len(ids) > 100
