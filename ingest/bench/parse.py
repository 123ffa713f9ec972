"""`tower bench parse`: what one frame costs each venue adapter, per kind of message, on one core.

Frames are built once with the loopback servers' own message builders (the venues' formats), then fed
to the real `parse`; rows are counted, nothing is written. Venues and kinds are measured interleaved,
round after round, so machine noise spreads evenly and the ratios between them hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from ingest.sim import binance_server as bn
from ingest.sim import bybit_server as by
from ingest.sim import hyperliquid_server as hl
from ingest.sim import okx_server as ok
from ingest.venues.base import Venue
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx

T0 = 1_764_072_000_000


def _frames(n: int) -> dict[tuple[str, str], tuple[Callable[[], Venue], list[bytes]]]:
    def dump(msgs) -> list[bytes]:
        return [orjson.dumps(m) for m in msgs]

    okx_sizes = {"BTC-USDT-SWAP": 0.01}
    return {
        ("binance", "trade"): (
            lambda: Binance(["BTCUSDT"]),
            dump(bn.agg_trade("BTCUSDT", i + 1, "91000.5", "0.25", T0 + i, i % 2 == 0) for i in range(n)),
        ),
        ("binance", "book"): (
            lambda: Binance(["BTCUSDT"]),
            dump(bn.book_ticker("BTCUSDT", i + 1, "91000.4", "3", "91000.6", "2", T0 + i) for i in range(n)),
        ),
        ("binance", "derivs"): (
            lambda: Binance(["BTCUSDT"]),
            dump(bn.mark_price("BTCUSDT", "91010", "91000", "0.0001", T0 + 3600_000, T0 + i) for i in range(n)),
        ),
        ("hyperliquid", "trade"): (
            lambda: Hyperliquid(["BTC"]),
            dump(
                {"channel": "trades", "data": [hl.trade("BTC", "B", "91000", "0.5", T0 + i, i + 1)]} for i in range(n)
            ),
        ),
        ("hyperliquid", "book"): (
            lambda: Hyperliquid(["BTC"]),
            dump({"channel": "bbo", "data": hl.bbo("BTC", T0 + i, ("91000", "3"), ("91001", "2"))} for i in range(n)),
        ),
        ("hyperliquid", "derivs"): (
            lambda: Hyperliquid(["BTC"]),
            dump(
                {"channel": "activeAssetCtx", "data": hl.asset_ctx("BTC", str(91000 + i), "91000", "0.0000125", "2500")}
                for i in range(n)
            ),
        ),
        ("bybit", "trade"): (
            lambda: Bybit(["BTCUSDT"]),
            dump(by.public_trade("BTCUSDT", [("Buy", "91000", "0.5", T0 + i, f"t{i}")], T0 + i) for i in range(n)),
        ),
        ("bybit", "book"): (
            lambda: Bybit(["BTCUSDT"]),
            dump(
                by.orderbook("BTCUSDT", "snapshot", ("91000", "3"), ("91000.5", "2"), i + 1, T0 + i) for i in range(n)
            ),
        ),
        ("bybit", "derivs"): (
            lambda: Bybit(["BTCUSDT"]),
            dump(
                by.ticker(
                    "BTCUSDT", T0 + i, markPrice="91010", indexPrice="91000", fundingRate="0.0001", openInterest="52000"
                )
                for i in range(n)
            ),
        ),
        ("okx", "trade"): (
            lambda: Okx(["BTC-USDT-SWAP"], contract_sizes=okx_sizes),
            dump(ok.trade("BTC-USDT-SWAP", str(i), "91000", "5", "buy", T0 + i) for i in range(n)),
        ),
        ("okx", "book"): (
            lambda: Okx(["BTC-USDT-SWAP"], contract_sizes=okx_sizes),
            dump(ok.bbo("BTC-USDT-SWAP", ("91000", "340"), ("91000.1", "12"), T0 + i, i + 1) for i in range(n)),
        ),
        ("okx", "derivs"): (
            lambda: Okx(["BTC-USDT-SWAP"], contract_sizes=okx_sizes),
            dump(ok.mark_price("BTC-USDT-SWAP", "91012", T0 + i) for i in range(n)),
        ),
    }


def run_parse_bench(frames: int = 20_000, rounds: int = 5) -> int:
    cases = _frames(frames)
    recv = datetime.now(UTC)
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for key, (make, payloads) in cases.items():
            venue = make()
            start = time.perf_counter()
            rows = 0
            for p in payloads:
                rows += len(venue.parse(p, recv).rows)
            elapsed = time.perf_counter() - start
            if rows != len(payloads):
                raise RuntimeError(f"{key}: {rows} rows from {len(payloads)} frames: {dict(venue.counters)}")
            best[key] = min(best.get(key, elapsed), elapsed)
    base = best[("binance", "trade")] / frames
    for (venue, kind), elapsed in best.items():
        us = elapsed / frames * 1e6
        print(
            f"RESULT venue={venue} kind={kind} frames_per_s={frames / elapsed:.0f} us_per_frame={us:.2f} "
            f"vs_binance_trade={us / (base * 1e6):.2f}",
            flush=True,
        )
    return 0
