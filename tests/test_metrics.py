"""Prometheus /metrics of `tower ingest`, scraped over real HTTP and reconciled with the database."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ingest.sim.binance_server import BinanceServer, agg_trade
from tests.support.ingest_helpers import NOW_MS, env
from tower.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_ingest_metrics_match_what_reached_the_database(monkeypatch, conn, db_dsn, tmp_path):
    env(monkeypatch, db_dsn, tmp_path)
    port = free_port()
    monkeypatch.setenv("TOWER_METRICS_PORT", str(port))
    server = await BinanceServer().start()
    before: dict = {}
    try:
        run = asyncio.create_task(
            asyncio.to_thread(
                main, ["ingest", "binance", "--symbols", "SOLUSDT", "--ws-url", server.root, "--duration", "3"]
            )
        )
        await server.wait_subscribed("solusdt@aggTrade")
        before = await asyncio.to_thread(scrape, port)  # the endpoint is up while ingest runs
        for a in range(1, 31):
            await server.publish(agg_trade("SOLUSDT", a, "150.25", "2", NOW_MS + a, buyer_is_maker=a % 3 == 0))
        await server.publish_raw("solusdt@aggTrade", '{"e": "aggTrade", "s": "SOLUSDT", "p": "NaN"')
        assert await run == 0
    finally:
        await server.stop()
    after = await asyncio.to_thread(scrape, port)

    stored = await conn.fetchval("SELECT count(*) FROM ops.raw_trades WHERE symbol = 'SOLUSDT'")
    rejected = await conn.fetchval("SELECT count(*) FROM ops.rejected_messages WHERE venue = 'binance'")
    assert stored == 30 and rejected == 1

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tower_ingest_messages_received_total", venue="binance", stream="trades") == stored
    assert delta("tower_ingest_messages_written_total", venue="binance", stream="trades") == stored
    # Not JSON at all: the stream cannot be known from the frame.
    assert (
        delta("tower_ingest_messages_rejected_total", venue="binance", stream="unknown", reason="malformed_json")
        == rejected
    )
    assert delta("tower_ingest_commit_latency_seconds_count") >= 1
    assert value(after, "tower_ingest_writer_queue_depth") == 0
    assert value(after, "tower_ingest_spill_bytes") == 0
    assert 0 <= value(after, "tower_ingest_last_message_age_seconds", venue="binance") < 60
