"""`tower demo`: SIMULATED Binance and Hyperliquid venues on loopback, with the real ingest against them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.service import ingest
from ingest.settings import IngestSettings
from ingest.sim.binance_server import BinanceServer, agg_trade, book_ticker
from ingest.sim.hyperliquid_server import HyperliquidServer, bbo, trade
from ingest.sim.market import Market, markets
from ingest.venues.binance import Binance
from ingest.venues.hyperliquid import Hyperliquid
from tower import features

log = logging.getLogger("ingest.demo")

ASSETS = ["BTC", "ETH", "SOL"]
STEP_S = 0.1
DISCONNECT_EVERY_S = 180  # on average: the connectors' reconnect path shows up in the dashboards too

BANNER = """\
==========================================================================================
  tower demo: SIMULATED market data. Local fake Binance and Hyperliquid servers on 127.0.0.1
  (real protocols, invented prices) feed the real connectors and writer. Not real markets.
=========================================================================================="""


def _px(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


async def drive_binance(server: BinanceServer, books: dict[str, Market], stop: asyncio.Event) -> None:
    agg_ids = {a: itertools.count(1) for a in books}
    update_ids = itertools.count(1)
    while not stop.is_set():
        now = int(time.time() * 1000)
        for asset, m in books.items():
            m.step(STEP_S)
            symbol = f"{asset}USDT"
            for side, price, qty in m.trades(STEP_S):
                await server.publish(agg_trade(symbol, next(agg_ids[asset]), _px(price), _px(qty), now,
                                               buyer_is_maker=side == "sell"))
            b, bq, a, aq = m.quote()
            await server.publish(book_ticker(symbol, next(update_ids), _px(b), _px(bq), _px(a), _px(aq), now))
        await _maybe_disconnect(server, "binance")
        await asyncio.sleep(STEP_S)


async def drive_hyperliquid(server: HyperliquidServer, books: dict[str, Market], stop: asyncio.Event) -> None:
    tids = itertools.count(1_000_000)
    while not stop.is_set():
        now = int(time.time() * 1000)
        for coin, m in books.items():
            m.step(STEP_S)
            prints = [trade(coin, "B" if side == "buy" else "A", _px(price), _px(qty), now, next(tids))
                      for side, price, qty in m.trades(STEP_S)]
            if prints:
                await server.publish("trades", coin, prints)
            b, bq, a, aq = m.quote()
            await server.publish("bbo", coin, bbo(coin, now, (_px(b), _px(bq)), (_px(a), _px(aq))))
        await _maybe_disconnect(server, "hyperliquid")
        await asyncio.sleep(STEP_S)


async def _maybe_disconnect(server: BinanceServer | HyperliquidServer, name: str) -> None:
    if random.random() < STEP_S / DISCONNECT_EVERY_S:
        log.info("SIMULATED %s drops its connections (the connectors should reconnect)", name)
        await server.drop_all(1001, "simulated venue restart")


async def keep_features_fresh(dsn: str, stop: asyncio.Event) -> None:
    """Under TSL the refresh policy runs on its own schedule; refreshing here shows the last minutes at once."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60)
        try:
            conn = await asyncpg.connect(dsn)
            try:
                now = datetime.now(UTC)
                await features.refresh(conn, now - timedelta(minutes=5), now)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("features refresh failed: %s", exc)


async def run_demo(dsn: str, duration_s: float | None, settings: IngestSettings) -> int:
    print(BANNER, flush=True)
    logging.getLogger("websockets").setLevel(logging.WARNING)  # the fake servers' own chatter
    binance_server = await BinanceServer().start()
    hl_server = await HyperliquidServer().start()
    stop = asyncio.Event()
    binance_markets = markets(ASSETS, 1)
    drivers = [asyncio.create_task(drive_binance(binance_server, binance_markets, stop)),
               asyncio.create_task(drive_hyperliquid(hl_server, markets(ASSETS, 2, anchors=binance_markets), stop)),
               asyncio.create_task(keep_features_fresh(dsn, stop))]
    venues = [Binance([f"{a}USDT" for a in ASSETS], ws_url=binance_server.root),
              Hyperliquid(ASSETS, ws_url=hl_server.url, heartbeat_s=settings.hyperliquid_ping_s)]
    print(f"SIMULATED Binance on {binance_server.root}, SIMULATED Hyperliquid on {hl_server.url}; "
          f"ingesting {', '.join(ASSETS)}" + (f" for {duration_s:g} s" if duration_s else " until Ctrl-C"), flush=True)
    try:
        result = await ingest(dsn, venues, duration_s=duration_s, stop=stop,
                              runtime_for=lambda v: settings.runtime_config(v.name),
                              writer_config=settings.writer_config("demo"))
    finally:
        stop.set()
        await asyncio.gather(*drivers, return_exceptions=True)
        await binance_server.stop()
        await hl_server.stop()
    stored = result.writer_stats
    print(f"SIMULATED demo finished: {stored.get('rows.raw_trades', 0)} trades and "
          f"{stored.get('rows.raw_book_l1', 0)} book updates stored (simulated data, venue names binance and "
          "hyperliquid on loopback)", flush=True)
    return 0 if result.fully_written else 3
