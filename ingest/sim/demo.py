"""`tower demo`: SIMULATED Binance, Hyperliquid, Bybit and OKX venues on loopback, with the real ingest
against them: trades, L1 books and the derivatives context (mark, index, funding, open interest,
liquidations), each venue in its own protocol and units; full depth books (ops.raw_book_depth) from every
simulated venue in its own depth protocol (Binance diff depth + REST snapshots, Bybit orderbook.200 deltas,
Hyperliquid l2Book snapshots, OKX books with checksums)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.service import ingest
from ingest.settings import IngestSettings
from ingest.sim import binance_server as bn
from ingest.sim import bybit_server as by
from ingest.sim import hyperliquid_server as hl
from ingest.sim import okx_server as ok
from ingest.sim.ladder import ladder
from ingest.sim.market import Market, markets
from ingest.venues.base import Venue
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx
from tower.cagg_refresh import refresh_feature_caggs

log = logging.getLogger("ingest.demo")

ASSETS = ["BTC", "ETH", "SOL"]
STEP_S = 0.1
DERIVS_EVERY_S = 1.0
DISCONNECT_EVERY_S = 180  # per venue, on average: the reconnect path shows up in the dashboards too
HOUR_MS, EIGHT_HOURS_MS = 3600_000, 8 * 3600_000
OKX_DEPTH_LEVELS = 40  # per side of the simulated OKX books channel

BANNER = """\
==========================================================================================
  tower demo: SIMULATED market data. Local fake Binance, Hyperliquid, Bybit and OKX servers
  on 127.0.0.1 (real protocols, invented prices) feed the real connectors and writer.
  Not real markets.
=========================================================================================="""

# (asset, market, now ms, trades, derivs due) -> frames published
Emit = Callable[[str, Market, int, list[tuple[str, float, float]], bool], Awaitable[None]]


def _px(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _next_settlement(now_ms: int, every_ms: int) -> int:
    return (now_ms // every_ms + 1) * every_ms


async def drive(name: str, server, books: dict[str, Market], emit: Emit, stop: asyncio.Event) -> None:
    next_derivs = 0.0
    while not stop.is_set():
        now = int(time.time() * 1000)
        derivs_due = time.monotonic() >= next_derivs
        if derivs_due:
            next_derivs = time.monotonic() + DERIVS_EVERY_S
        for asset, m in books.items():
            m.step(STEP_S)
            if derivs_due:
                m.derivs_step(DERIVS_EVERY_S)
            await emit(asset, m, now, m.trades(STEP_S), derivs_due)
        if random.random() < STEP_S / DISCONNECT_EVERY_S:
            log.info("SIMULATED %s drops its connections (the connectors should reconnect)", name)
            await server.drop_all(1001, "simulated venue restart")
        await asyncio.sleep(STEP_S)


HISTORY_KEPT = 5_000  # trades per symbol the simulated venues keep for REST history (backfill)


def keep(history: list, item: object) -> None:
    """Appends to a simulated venue's trade history, bounded so a long demo does not grow without end."""
    history.append(item)
    if len(history) > 2 * HISTORY_KEPT:
        del history[:HISTORY_KEPT]


DEPTH_LEVELS = 60  # per side, every 2 bps: the book reaches about 120 bps
DEPTH_LEVEL_NOTIONAL = 40_000.0  # quote currency resting on a level, on average
DEPTH_PULLED = 0.3  # during a burst market makers pull: what stays of each level


def depth_ladder(m: Market, bid: float, bid_qty: float, ask: float, ask_qty: float) -> tuple[dict, dict]:
    """A full book around the quote: the L1 levels, then levels on a fixed grid whose sizes depend on the
    price only (a level keeps its size while the quote moves), thinner during a burst."""
    grid = max(1, round(m.mid * 2e-4 / m.tick)) * m.tick
    scale = DEPTH_PULLED if m.burst_left_s > 0 else 1.0

    def size(k: int) -> str:
        return _px(round(DEPTH_LEVEL_NOTIONAL / m.mid * scale * (0.5 + (k * 2654435761) % 1000 / 1000), 6) or 0.001)

    top_bid, top_ask = math.ceil(bid / grid) - 1, math.floor(ask / grid) + 1  # grid levels strictly outside L1
    bids = {_px(k * grid): size(k) for k in range(top_bid, top_bid - DEPTH_LEVELS, -1)}
    asks = {_px(k * grid): size(k) for k in range(top_ask, top_ask + DEPTH_LEVELS)}
    bids[_px(bid)], asks[_px(ask)] = _px(bid_qty), _px(ask_qty)
    return bids, asks


def changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    """The diff that turns one side into the other: new sizes, and "0" for the levels that went."""
    return [(p, "0") for p in old if p not in new] + [(p, q) for p, q in new.items() if old.get(p) != q]


def binance_emitter(server: bn.BinanceServer) -> Emit:
    # Binance numbers aggregate trades per symbol, and the connector reads a jump as lost trades.
    agg_ids: dict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
    update_ids = itertools.count(1)

    async def emit(asset, m, now, trades, derivs_due):
        symbol = f"{asset}USDT"
        for side, price, qty in trades:
            sell = side == "sell"
            trade = bn.agg_trade(symbol, next(agg_ids[symbol]), _px(price), _px(qty), now, buyer_is_maker=sell)
            keep(server.history.setdefault(symbol, []), trade)  # what GET /fapi/v1/aggTrades backfills gaps from
            await server.publish(trade)
        b, bq, a, aq = m.quote()
        await server.publish(bn.book_ticker(symbol, next(update_ids), _px(b), _px(bq), _px(a), _px(aq), now))
        book = server.books.setdefault(symbol, bn.SimBook())
        bids, asks = depth_ladder(m, b, bq, a, aq)
        bid_changes, ask_changes = changes(book.bids, bids), changes(book.asks, asks)
        ids = max(1, len(bid_changes) + len(ask_changes))  # Binance ids count the book's changes
        await server.depth_update(symbol, bid_changes, ask_changes, now, ids=ids)
        if derivs_due:
            mark, index = m.mark_index()
            await server.publish(
                bn.mark_price(
                    symbol, _px(mark), _px(index), f"{m.funding_8h:.8f}", _next_settlement(now, EIGHT_HOURS_MS), now
                )
            )
            server.open_interest[symbol] = (f"{m.open_interest:.3f}", now)
            for side, price, qty in m.liquidations(DERIVS_EVERY_S):
                await server.publish(bn.force_order(symbol, side.upper(), _px(price), _px(qty), now))

    return emit


def hyperliquid_emitter(server: hl.HyperliquidServer) -> Emit:
    tids = itertools.count(1_000_000)

    async def emit(coin, m, now, trades, derivs_due):
        prints = [
            hl.trade(coin, "B" if side == "buy" else "A", _px(price), _px(qty), now, next(tids))
            for side, price, qty in trades
        ]
        if prints:
            await server.publish("trades", coin, prints)
        b, bq, a, aq = m.quote()
        await server.publish("bbo", coin, hl.bbo(coin, now, (_px(b), _px(bq)), (_px(a), _px(aq))))
        bids, asks = ladder(m, b, bq, a, aq)
        await server.publish_book(coin, *({_px(p): (_px(q), 1) for p, q in side.items()} for side in (bids, asks)), now)
        if derivs_due:
            mark, index = m.mark_index()
            await server.publish(
                "activeAssetCtx",
                coin,
                hl.asset_ctx(coin, _px(mark), _px(index), f"{m.funding_8h / 8:.10f}", f"{m.open_interest:.3f}"),
            )

    return emit


def bybit_emitter(server: by.BybitServer) -> Emit:
    ids, update_ids = itertools.count(1), itertools.count(1)

    async def emit(asset, m, now, trades, derivs_due):
        symbol = f"{asset}USDT"
        if trades:
            await server.publish(
                by.public_trade(
                    symbol,
                    [("Buy" if s == "buy" else "Sell", _px(p), _px(q), now, f"by-{next(ids)}") for s, p, q in trades],
                    now,
                )
            )
        b, bq, a, aq = m.quote()
        await server.publish(
            by.orderbook(symbol, "snapshot", (_px(b), _px(bq)), (_px(a), _px(aq)), next(update_ids), now)
        )
        bids, asks = ladder(m, b, bq, a, aq)
        await server.depth_update(symbol, *({_px(p): _px(q) for p, q in side.items()} for side in (bids, asks)), now)
        if derivs_due:
            mark, index = m.mark_index()
            await server.publish(
                by.ticker(
                    symbol,
                    now,
                    markPrice=_px(mark),
                    indexPrice=_px(index),
                    fundingRate=f"{m.funding_8h:.8f}",
                    fundingIntervalHour="8",
                    nextFundingTime=str(_next_settlement(now, EIGHT_HOURS_MS)),
                    openInterest=f"{m.open_interest:.3f}",
                )
            )
            for side, price, qty in m.liquidations(DERIVS_EVERY_S):  # Bybit names the liquidated position
                await server.publish(
                    by.liquidation(symbol, "Buy" if side == "sell" else "Sell", _px(price), _px(qty), now)
                )

    return emit


def okx_emitter(server: ok.OkxServer) -> Emit:
    # OKX numbers trades per instrument: one shared counter would look like gaps in every one.
    ids: dict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
    seq = itertools.count(1)
    depth: dict[str, dict[str, str]] = defaultdict(dict)  # instId -> price -> contracts of the simulated book

    def contracts(inst: str, qty: float) -> str:
        return _px(max(0.01, round(qty / float(server.contract_values[inst]), 2)))

    def ladder(inst: str, m: Market, best: float, side: int) -> list[tuple[str, str]]:
        """OKX_DEPTH_LEVELS levels from the best price outwards, thinning out to about 120 bps away (one tick
        apart at the top); a fifth of the sizes change each step."""
        held = depth[inst]
        ticks = [i + round(m.mid * 0.012 * (i / OKX_DEPTH_LEVELS) ** 2 / m.tick) for i in range(OKX_DEPTH_LEVELS)]
        prices = [_px(best + side * t * m.tick) for t in ticks]
        return [(p, held[p] if p in held and m.rng.random() > 0.2 else contracts(inst, m.size() * 5)) for p in prices]

    async def emit(asset, m, now, trades, derivs_due):
        inst = f"{asset}-USDT-SWAP"
        for side, price, qty in trades:
            pushed = ok.trade(inst, str(next(ids[inst])), _px(price), contracts(inst, qty), side, now)
            keep(server.history.setdefault(inst, []), pushed["data"][0])  # history-trades backfills gaps from it
            await server.publish(pushed)
        b, bq, a, aq = m.quote()
        await server.publish(ok.bbo(inst, (_px(b), contracts(inst, bq)), (_px(a), contracts(inst, aq)), now, next(seq)))
        bids, asks = ladder(inst, m, b, -1), ladder(inst, m, a, 1)
        depth[inst] = dict(bids + asks)
        await server.book_to(inst, bids, asks, now)  # the books channel: one update of what changed
        if derivs_due:
            mark, index = m.mark_index()
            settle = _next_settlement(now, EIGHT_HOURS_MS)
            await server.publish(ok.index_ticker(f"{asset}-USDT", _px(index), now))
            await server.publish(ok.mark_price(inst, _px(mark), now))
            await server.publish(ok.funding_rate(inst, f"{m.funding_8h:.8f}", settle, settle + EIGHT_HOURS_MS, now))
            await server.publish(ok.open_interest(inst, contracts(inst, m.open_interest), now))
            for side, price, qty in m.liquidations(DERIVS_EVERY_S):
                await server.publish(ok.liquidation(inst, side, _px(price), contracts(inst, qty), now))

    return emit


async def keep_features_fresh(dsn: str, stop: asyncio.Event) -> None:
    """Under TSL the refresh policy runs on its own schedule; refreshing here shows the last minutes at once."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60)
        try:
            conn = await asyncpg.connect(dsn)
            try:
                now = datetime.now(UTC)
                await refresh_feature_caggs(conn, now - timedelta(minutes=5), now)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("features refresh failed: %s", exc)


async def run_demo(dsn: str, duration_s: float | None, settings: IngestSettings) -> int:
    print(BANNER, flush=True)
    logging.getLogger("websockets").setLevel(logging.WARNING)  # the fake servers' own chatter
    binance, hyper = await bn.BinanceServer().start(), await hl.HyperliquidServer().start()
    bybit, okx = await by.BybitServer().start(), await ok.OkxServer().start()
    stop = asyncio.Event()
    lead = markets(ASSETS, 1)  # Binance leads; the others follow it within a few bps, as arbitrage would
    drivers = [
        asyncio.create_task(drive("binance", binance, lead, binance_emitter(binance), stop)),
        asyncio.create_task(
            drive("hyperliquid", hyper, markets(ASSETS, 2, anchors=lead), hyperliquid_emitter(hyper), stop)
        ),
        asyncio.create_task(drive("bybit", bybit, markets(ASSETS, 3, anchors=lead), bybit_emitter(bybit), stop)),
        asyncio.create_task(drive("okx", okx, markets(ASSETS, 4, anchors=lead), okx_emitter(okx), stop)),
        asyncio.create_task(keep_features_fresh(dsn, stop)),
    ]
    hyper.mids = {a: str(m.mid) for a, m in lead.items()}  # what the Hyperliquid connector picks nSigFigs from
    venues: list[Venue] = [
        Binance([f"{a}USDT" for a in ASSETS], ws_url=binance.root, rest_url=binance.rest_url),
        Hyperliquid(ASSETS, ws_url=hyper.url, rest_url=hyper.rest_url, heartbeat_s=settings.ping_s(Hyperliquid)),
        Bybit([f"{a}USDT" for a in ASSETS], ws_url=bybit.url, heartbeat_s=settings.ping_s(Bybit)),
        Okx(
            [f"{a}-USDT-SWAP" for a in ASSETS], ws_url=okx.url, rest_url=okx.rest_url, heartbeat_s=settings.ping_s(Okx)
        ),
    ]
    for v in venues:
        v.configure_depth(settings.depth_config())  # every simulated venue speaks its depth protocol
    print(
        f"SIMULATED Binance on {binance.root}, Hyperliquid on {hyper.url}, Bybit on {bybit.url}, OKX on {okx.url}; "
        f"ingesting {', '.join(ASSETS)}" + (f" for {duration_s:g} s" if duration_s else " until Ctrl-C"),
        flush=True,
    )
    try:
        result = await ingest(
            dsn,
            venues,
            duration_s=duration_s,
            stop=stop,
            runtime_for=settings.runtime_config,
            writer_config=settings.writer_config("demo"),
        )
    finally:
        stop.set()
        await asyncio.gather(*drivers, return_exceptions=True)
        for server in (binance, hyper, bybit, okx):
            await server.stop()
    stored = result.writer_stats
    print(
        f"SIMULATED demo finished: {stored.get('rows.raw_trades', 0)} trades, "
        f"{stored.get('rows.raw_book_l1', 0)} book updates, {stored.get('rows.raw_book_depth', 0)} depth samples, "
        f"{stored.get('rows.raw_derivs', 0)} derivatives "
        f"updates and {stored.get('rows.raw_liquidations', 0)} liquidations stored (simulated data, venue names "
        "binance, hyperliquid, bybit and okx on loopback)",
        flush=True,
    )
    return 0 if result.fully_written else 3
