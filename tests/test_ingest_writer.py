"""The writer when the database goes away: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import orjson

from ingest.rows import Derivs, Liquidation, Trade
from ingest.sim.binance_server import BinanceServer, agg_trade
from ingest.venues.binance import Binance
from ingest.writer import Writer, WriterConfig
from tests.support.ingest_helpers import running, wait_until
from tests.support.tcp_proxy import TcpProxy

T0 = int(datetime(2026, 11, 25, 6, 0, tzinfo=UTC).timestamp() * 1000)


async def until(condition) -> None:
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110 - the writer's counters have no event to wait on
            await asyncio.sleep(0.05)


def via(proxy: TcpProxy, dsn: str) -> str:
    parts = urlsplit(dsn)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def start_proxy(dsn: str) -> TcpProxy:
    parts = urlsplit(dsn)
    return await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()


async def test_database_down_mid_stream_keeps_every_row_exactly_once(conn, db_dsn, tmp_path):
    proxy = await start_proxy(db_dsn)
    server = await BinanceServer().start()
    # A small memory bound, so the outage also exercises the spill file and its replay.
    config = WriterConfig(
        spill_path=tmp_path / "spill.jsonl",
        flush_s=0.05,
        batch_rows=50,
        memory_rows=100,
        retry_initial_s=0.05,
        retry_cap_s=0.2,
    )
    try:
        async with running(
            via(proxy, db_dsn), [Binance(["BTCUSDT"], ws_url=server.root, derivs=False)], tmp_path, writer_config=config
        ) as run:
            await server.wait_subscribed("btcusdt@aggTrade")
            for a in range(1, 101):
                await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=False))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 100)
            await proxy.cut()
            for a in range(101, 501):
                await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=True))
            # the outage was noticed and rows went to disk
            await until(lambda: run.writer.stats["spilled_rows"] > 0 and run.writer.stats["retries"] >= 2)
            await proxy.restore()
            for a in range(501, 601):
                await server.publish(agg_trade("BTCUSDT", a, "90000", "1", T0 + a, buyer_is_maker=False))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 600)
            result = await run.finish()
    finally:
        await server.stop()
        await proxy.stop()
    assert result.fully_written
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 600
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == 600
    assert await conn.fetchval("SELECT min(trade_id::int) = 1 AND max(trade_id::int) = 600 FROM ops.raw_trades")
    assert not list(tmp_path.glob("spill.jsonl*")), "the spill file is removed once replayed"


def trades(n: int, start: int = 0) -> list[Trade]:
    t0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    now = datetime.now(UTC)
    return [
        Trade("binance", "BTCUSDT", t0 + timedelta(milliseconds=i), now, str(i), 90000.0, 1.0, "buy")
        for i in range(start, start + n)
    ]


async def test_overlapping_batches_from_two_writers_are_stored_once(conn, db_dsn, tmp_path):
    first = Writer(db_dsn, WriterConfig(spill_path=tmp_path / "a.jsonl", flush_s=0.01))
    second = Writer(db_dsn, WriterConfig(spill_path=tmp_path / "b.jsonl", flush_s=0.01))
    await first.start()
    await first.put(trades(300))
    assert await first.close()
    await second.start()  # e.g. a restarted process that replays the overlap
    await second.put(trades(400, start=200))
    assert await second.close()
    assert second.stats["dedup_fallbacks"] == 1
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 600
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == 600


async def test_rows_spilled_at_shutdown_are_replayed_on_next_start(conn, db_dsn, tmp_path):
    proxy = await start_proxy(db_dsn)
    spill = tmp_path / "spill.jsonl"
    config = WriterConfig(spill_path=spill, flush_s=0.01, retry_initial_s=0.05, retry_cap_s=0.1, memory_rows=10)
    try:
        await proxy.cut()
        writer = Writer(via(proxy, db_dsn), config)
        await writer.start()
        await writer.put(trades(250))
        assert not await writer.close(drain_timeout_s=0.5)  # the database never came back: kept on disk
    finally:
        await proxy.stop()
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 0
    again = Writer(db_dsn, config)
    await again.start()
    assert await again.close()
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 250
    rows = await conn.fetch("SELECT trade_id, ts, recv_ts, price FROM ops.raw_trades ORDER BY ts")
    assert [r["trade_id"] for r in rows] == [str(i) for i in range(250)]
    assert rows[0]["ts"] == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


async def test_derivatives_rows_survive_the_spill_file_and_a_second_replay(conn, db_dsn, tmp_path):
    """Intervals and optional fields come back from the JSON spill file as they went in, and a replay of
    what is already stored adds nothing (the derivs dedup keys)."""
    proxy = await start_proxy(db_dsn)
    spill = tmp_path / "spill.jsonl"
    config = WriterConfig(spill_path=spill, flush_s=0.01, retry_initial_s=0.05, retry_cap_s=0.1, memory_rows=10)
    t0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    rows = [
        Derivs(
            "okx",
            "BTC-USDT-SWAP",
            t0 + timedelta(seconds=i),
            t0,
            mark_px=91000.0 + i,
            funding_rate=0.0001,
            funding_interval=timedelta(hours=4),
            next_funding_ts=t0 + timedelta(hours=4),
        )
        for i in range(20)
    ]
    rows += [
        Derivs("okx", "BTC-USDT-SWAP", t0, t0, open_interest=22161.13),
        Liquidation("okx", "BTC-USDT-SWAP", t0, t0, "sell", 90500.0, 0.3),
    ]
    try:
        await proxy.cut()
        writer = Writer(via(proxy, db_dsn), config)
        await writer.start()
        await writer.put(rows)
        assert not await writer.close(drain_timeout_s=0.5)
    finally:
        await proxy.stop()
    kept = b"".join(f.read_bytes() for f in writer._spill_files())  # the retry loop may have renamed it
    assert kept.count(b"\n") >= 1
    for _ in range(2):  # the second run replays the same file again: nothing twice
        spill.write_bytes(kept)
        again = Writer(db_dsn, config)
        await again.start()
        assert await again.close()
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_derivs") == 21
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_liquidations") == 1
    first = await conn.fetchrow("SELECT * FROM ops.raw_derivs WHERE mark_px = 91000")
    assert (first["funding_interval"], first["next_funding_ts"], first["index_px"]) == (
        timedelta(hours=4),
        t0 + timedelta(hours=4),
        None,
    )


async def test_a_batch_the_database_refuses_is_set_aside_and_later_batches_still_land(conn, db_dsn, tmp_path):
    spill = tmp_path / "spill.jsonl"
    # batch_rows=1: every put() becomes its own batch, so the bad row cannot share one with good rows
    writer = Writer(db_dsn, WriterConfig(spill_path=spill, flush_s=0.01, batch_rows=1))
    await writer.start()
    now = datetime.now(UTC)
    # a side the table's CHECK refuses: only a bug upstream could produce it, and it must not stall the writer
    await writer.put([Trade("binance", "BTCUSDT", now, now, "x1", 1.0, 1.0, "sideways")])
    await writer.put(trades(20))
    assert await writer.close()
    assert await conn.fetchval("SELECT count(*) FROM ops.raw_trades") == 20
    assert writer.stats["rows_set_aside"] == 1
    assert "sideways" in (tmp_path / "spill.rejected.jsonl").read_text()


async def test_ingest_starts_while_the_database_is_down(conn, db_dsn, tmp_path):
    proxy = await start_proxy(db_dsn)
    server = await BinanceServer().start()
    config = WriterConfig(spill_path=tmp_path / "spill.jsonl", flush_s=0.05, retry_initial_s=0.05, retry_cap_s=0.2)
    try:
        await proxy.cut()
        venue = Binance(["BTCUSDT", "ADAUSDT"], ws_url=server.root, derivs=False)
        async with running(via(proxy, db_dsn), [venue], tmp_path, writer_config=config) as run:
            await server.wait_subscribed("adausdt@aggTrade")
            for a in range(1, 51):
                await server.publish(agg_trade("ADAUSDT", a, "0.45", "100", T0 + a, buyer_is_maker=False))
            await until(lambda: run.writer.stats["retries"] >= 2)
            await proxy.restore()
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 50)
            await wait_until(conn, "SELECT count(*) FROM ops.instruments WHERE symbol = 'ADAUSDT'", 1)
    finally:
        await server.stop()
        await proxy.stop()
    assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades") == 50
    assert await conn.fetchval("SELECT asset FROM ops.instruments WHERE symbol = 'ADAUSDT'") == "ADA"


async def test_close_while_a_flood_is_still_being_committed_is_clean_and_loses_nothing(conn, db_dsn, tmp_path):
    """A drain that runs out of time mid-commit (the database slower than the flood) ends with every row
    either committed or in the spill file: no error at shutdown, and the next start stores the rest once."""
    config = WriterConfig(spill_path=tmp_path / "spill.jsonl", batch_rows=2000, memory_rows=20_000, flush_s=0.05)
    writer = Writer(db_dsn, config)
    await writer.start()
    now = datetime.now(UTC)
    sent = 0
    for _ in range(100):
        group = [Trade("flood", "BTCUSDT", now, now, str(sent + i), 100.0, 1.0, "buy") for i in range(2000)]
        sent += len(group)
        await writer.put(group)
    # Much more than the memory bound is waiting; give the drain no time to finish it.
    assert not await writer.close(drain_timeout_s=0.05)
    assert writer.spill_bytes() > 0

    again = Writer(db_dsn, config)
    await again.start()
    assert await again.close(drain_timeout_s=120)
    stored = await conn.fetchval("SELECT count(*) FROM ops.raw_trades WHERE venue = 'flood'")
    distinct = await conn.fetchval("SELECT count(DISTINCT trade_id) FROM ops.raw_trades WHERE venue = 'flood'")
    assert (stored, distinct) == (sent, sent)


async def test_a_spill_file_from_before_the_source_column_replays_with_source_ws(conn, db_dsn, tmp_path):
    """Spill files written before raw_trades.source existed hold trade records one column short: they are
    replayed as streamed trades ('ws'); a backfilled trade spilled now keeps 'rest'."""
    spill = tmp_path / "spill.jsonl"
    old = [["binance", "BTCUSDT", "2026-11-25T06:00:00+00:00", "2026-11-25T06:00:01+00:00", "1", 90000.0, 1.0, "buy"]]
    new = [[*old[0][:4], "2", 90001.0, 2.0, "sell", "rest"]]
    spill.write_bytes(
        orjson.dumps({"records": {"raw_trades": old}}) + b"\n" + orjson.dumps({"records": {"raw_trades": new}}) + b"\n"
    )
    writer = Writer(db_dsn, WriterConfig(spill_path=spill, flush_s=0.01))
    await writer.start()
    assert await writer.close()
    rows = await conn.fetch("SELECT trade_id, source, qty FROM ops.raw_trades ORDER BY trade_id")
    assert [(r["trade_id"], r["source"], r["qty"]) for r in rows] == [("1", "ws", 1.0), ("2", "rest", 2.0)]
