"""A realistic hour of ops data relative to the database's now(), so every dashboard card has something
to show: two venues x two assets of book and trades (one feed gone quiet 8 minutes ago), older trades
for compression, connection events, gaps, rejected input, risk scores and events, alert deliveries, job runs,
and the perp context: mark/index/funding/open interest every 6 s and forced orders (liquidations), and
full-book depth samples every 5 s (the Binance BTC book drained during its liquidations).

Chosen so that filtering on venue 'hyperliquid', symbol 'BTC' or asset 'ETH' leaves rows in every card,
and some rows fall outside a 1-hour (or 24-hour) window."""

from __future__ import annotations

import asyncio
import json
import math
import random
from datetime import datetime, timedelta

import asyncpg

from tests.support import tsdb
from tests.support.depth import DEPTH_COLUMNS, Depth, sample
from tests.support.fixtures import BOOK_COLUMNS, DERIVS_COLUMNS, LIQUIDATION_COLUMNS, TRADE_COLUMNS, activate
from tower.cagg_refresh import refresh_feature_caggs

MARKETS = [
    # venue, symbol, asset, mid, half spread, latency ms
    ("binance", "BTCUSDT", "BTC", 97_000.0, 0.05, 40.0),
    ("binance", "ETHUSDT", "ETH", 3_500.0, 0.005, 45.0),
    ("hyperliquid", "BTC", "BTC", 97_020.0, 0.5, 180.0),
    ("hyperliquid", "ETH", "ETH", 3_501.0, 0.05, 190.0),
]
QUIET = ("hyperliquid", "ETH")  # its feed stops 8 minutes before now
MINUTES = 40
FILTER_VALUES = {"venue": "hyperliquid", "symbol": "BTC", "asset": "ETH"}

# Perp context per market: funding rate per interval, the interval, usual basis (bps), open interest.
# Binance pays every 8 h, Hyperliquid hourly: 0.0001 / 8 h is 1 bp per 8 h, 0.00002 / h is 1.6 bps per 8 h.
DERIVS = {
    ("binance", "BTCUSDT"): (0.0001, timedelta(hours=8), 2.0, 80_000.0),
    ("binance", "ETHUSDT"): (0.00015, timedelta(hours=8), 1.5, 1_500_000.0),
    ("hyperliquid", "BTC"): (0.00002, timedelta(hours=1), -3.0, 20_000.0),
    ("hyperliquid", "ETH"): (0.0000125, timedelta(hours=1), -1.0, 400_000.0),
}
BASIS_BLOWOUT = (("binance", "BTCUSDT"), range(20, 23), 60.0)  # minutes ago with the mark 60 bps over the index
# Full-book depth per market: usual bid + ask notional within 25 bps, usual slippage of the standard order (bps).
DEPTH = {
    ("binance", "BTCUSDT"): (4_000_000.0, 0.3),
    ("binance", "ETHUSDT"): (2_500_000.0, 0.6),
    ("hyperliquid", "BTC"): (1_500_000.0, 1.2),
    ("hyperliquid", "ETH"): (800_000.0, 2.5),
}
DEPTH_DRAIN = (("binance", "BTCUSDT"), range(12, 14), 0.15)  # minutes ago with 15 % of its usual depth left
UNFILLABLE = ("hyperliquid", "ETH")  # every 10th sample: the held book cannot fill the standard order
# Forced orders: seconds before now, venue, symbol, side, price, qty ('sell' closes a long).
LIQUIDATIONS = [
    (12 * 60 + 30, "binance", "BTCUSDT", "sell", 96_900.0, 12.0),  # a long squeeze on Binance BTC
    (12 * 60 + 20, "binance", "BTCUSDT", "sell", 96_880.0, 20.0),
    (12 * 60 + 10, "binance", "BTCUSDT", "sell", 96_850.0, 6.5),
    (11 * 60 + 40, "binance", "BTCUSDT", "buy", 96_950.0, 1.2),
    (25 * 60, "binance", "ETHUSDT", "buy", 3_510.0, 40.0),
    (9 * 60 + 5, "binance", "ETHUSDT", "sell", 3_495.0, 15.0),
    (30 * 60 + 5, "hyperliquid", "BTC", "sell", 97_000.0, 0.8),
    (6 * 60 + 15, "hyperliquid", "BTC", "buy", 97_040.0, 2.5),
    (18 * 60, "hyperliquid", "ETH", "sell", 3_498.0, 30.0),
    (3 * 3600, "binance", "BTCUSDT", "sell", 96_400.0, 3.0),  # outside a 1-hour window
]


def _s(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)


async def load(conn: asyncpg.Connection, seed: int = 5) -> datetime:
    """Insert the data set; returns the now() it was built around."""
    rng = random.Random(seed)
    tsl = await conn.fetchval("SELECT current_setting('timescaledb.license', true)") == "timescale"
    if tsl:
        # Keep TimescaleDB's background jobs out of the way: they would race the explicit refresh and
        # compression below ("tuple concurrently updated"). Tests must not depend on the scheduler anyway.
        await conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
            "WHERE hypertable_name IS NOT NULL"
        )
    now = await conn.fetchval("SELECT now()")
    book, trades, derivs = [], [], []
    for venue, symbol, _asset, mid0, half, lat in MARKETS:
        mid = mid0
        walk = random.Random(f"{seed}-{_asset}")  # one price path per asset, so venues move together
        drng = random.Random(f"{seed}-{venue}-{symbol}-derivs")  # its own stream: book and trades stay as they were
        rate, interval, basis, oi = DERIVS[(venue, symbol)]
        stop = 8 * 60 if (venue, symbol) == QUIET else 0
        update_id = 1_000
        for i in range(MINUTES * 60 // 2, stop // 2, -1):  # a book update every 2 s
            ts = _s(now, i * 2 + rng.random())
            mid *= math.exp(walk.gauss(0, 0.00008))
            if i % 3 == 0:  # mark/index/funding/OI every 6 s
                blown = (venue, symbol) == BASIS_BLOWOUT[0] and i * 2 // 60 in BASIS_BLOWOUT[1]
                b = BASIS_BLOWOUT[2] if blown else basis + drng.gauss(0, 0.5)
                oi = max(0.0, oi * (1 + drng.gauss(0, 0.0004)))
                derivs.append(
                    (
                        venue,
                        symbol,
                        ts,
                        ts + timedelta(milliseconds=lat),
                        mid * (1 + b / 1e4),
                        mid,
                        rate * (1 + drng.uniform(-0.05, 0.05)),
                        interval,
                        _next_funding(ts, interval),
                        oi,
                    )
                )
            spread = half * (1 + (4 if 900 < i * 2 < 960 and venue == "binance" else 0))  # a wide minute
            recv = ts + timedelta(milliseconds=lat * rng.uniform(0.6, 1.6))
            update_id += rng.randint(1, 5)
            book.append(
                (
                    venue,
                    symbol,
                    ts,
                    recv,
                    mid - spread,
                    rng.uniform(0.5, 8),
                    mid + spread,
                    rng.uniform(0.5, 8),
                    update_id,
                )
            )
            if i % 2 == 0:  # a trade every 4 s
                side = "buy" if rng.random() < 0.55 else "sell"
                px = mid + spread if side == "buy" else mid - spread
                trades.append(
                    (
                        venue,
                        symbol,
                        ts + timedelta(milliseconds=300),
                        recv + timedelta(milliseconds=300),
                        str(update_id),
                        px,
                        round(rng.uniform(0.001, 2), 4),
                        side,
                    )
                )
    # Older trades, 5 hours back: an hourly chunk the TSL tests can compress.
    for i in range(600):
        ts = _s(now, 5 * 3600 + i * 5)
        trades.append(
            (
                "binance",
                "BTCUSDT",
                ts,
                ts + timedelta(milliseconds=50),
                f"old{i}",
                96_500.0 + rng.uniform(-20, 20),
                round(rng.uniform(0.001, 1), 4),
                rng.choice(["buy", "sell"]),
            )
        )
    await conn.copy_records_to_table("raw_book_l1", schema_name="ops", records=book, columns=BOOK_COLUMNS)
    await conn.copy_records_to_table("raw_trades", schema_name="ops", records=trades, columns=TRADE_COLUMNS)
    # As ingest marks them on first data; binance SOLUSDT activated by a user, never delivered ("no data").
    await activate(conn, [(venue, symbol) for venue, symbol, *_ in MARKETS] + [("binance", "SOLUSDT")])
    await conn.copy_records_to_table("raw_derivs", schema_name="ops", records=derivs, columns=DERIVS_COLUMNS)
    await conn.copy_records_to_table(
        "raw_book_depth", schema_name="ops", records=_depth_samples(now, seed), columns=DEPTH_COLUMNS
    )
    await conn.copy_records_to_table(
        "raw_liquidations",
        schema_name="ops",
        columns=LIQUIDATION_COLUMNS,
        records=[
            (venue, symbol, _s(now, ago), _s(now, ago - 0.05), side, px, qty)
            for ago, venue, symbol, side, px, qty in LIQUIDATIONS
        ],
    )

    await conn.executemany(
        "INSERT INTO ops.connection_events (ts, venue, conn_id, event, code, reason, attempt, delay_s) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (_s(now, 30 * 3600), "binance", "b-0", "disconnect", 1006, "old outage", None, None),
            (_s(now, 23 * 3600), "binance", "b-1", "connect", None, None, 0, None),
            (_s(now, 2 * 3600), "binance", "b-1", "disconnect", 1006, "ping timeout", None, None),
            (_s(now, 2 * 3600 - 1), "binance", "b-2", "reconnect_attempt", None, None, 1, 1.0),
            (_s(now, 2 * 3600 - 3), "binance", "b-2", "connect", None, None, 1, None),
            (_s(now, 20 * 3600), "hyperliquid", "h-1", "connect", None, None, 0, None),
            (_s(now, 8 * 60), "hyperliquid", "h-1", "stale", None, "no message for 10 s", None, None),
            (_s(now, 8 * 60 - 1), "hyperliquid", "h-1", "disconnect", 1001, "stale feed", None, None),
            (_s(now, 8 * 60 - 2), "hyperliquid", "h-2", "reconnect_attempt", None, None, 1, 1.0),
            (_s(now, 7 * 60), "hyperliquid", "h-3", "reconnect_attempt", None, None, 2, 2.0),
            (_s(now, 5 * 60), "hyperliquid", "h-4", "error", None, "connection refused", 3, 4.0),
        ],
    )
    await conn.executemany(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, detected_at, from_id, to_id, missing, cause, resolved_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            ("binance", "BTCUSDT", "aggTrade", _s(now, 3600), 100, 113, 12, "id_jump", _s(now, 3500)),
            ("binance", "ETHUSDT", "aggTrade", _s(now, 30 * 3600), 5, 9, 3, "id_jump", None),
            ("hyperliquid", "BTC", "trades", _s(now, 600), None, None, None, "reconnect", _s(now, 590)),
            ("hyperliquid", "ETH", "l2Book", _s(now, 8 * 60), None, None, None, "stale", None),
        ],
    )
    await conn.executemany(
        "INSERT INTO ops.rejected_messages (recv_ts, venue, stream, symbol, reason, raw) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (_s(now, 20 * 60 + k), "binance", "bookTicker", "BTCUSDT", "crossed_book", '{"b":"2","a":"1"}')
            for k in range(3)
        ]
        + [(_s(now, 10 * 60 + k), "binance", None, None, "malformed_json", "{not json") for k in range(2)]
        + [
            (_s(now, 15 * 60 + k), "hyperliquid", "trades", "DOGE", "unknown_symbol", '{"coin":"DOGE"}')
            for k in range(4)
        ]
        + [(_s(now, 25 * 60), "hyperliquid", "trades", "BTC", "negative_price", '{"px":"-1"}')]
        + [(_s(now, 3 * 3600), "binance", "aggTrade", "ETHUSDT", "nan_price", '{"p":"NaN"}')],
    )

    scores = []
    for venue, symbol, asset, _mid, _half, _lat in MARKETS:
        for m in range(MINUTES, 0, -1):
            bucket = (now - timedelta(minutes=m)).replace(second=0, microsecond=0)
            quiet = (venue, symbol) == QUIET and m <= 8
            spread_score = 10 + 5 * math.sin(m / 5) + (30 if venue == "binance" and 15 <= m <= 16 else 0)
            fresh_score = 95.0 if quiet else 2.0
            div_bps = 2.0 + math.sin(m / 3) if venue == "hyperliquid" else -(2.0 + math.sin(m / 3))
            comps = {
                "spread": {"value": 0.5 + spread_score / 100, "points": spread_score},
                "freshness": {"value": 480.0 if quiet else 1.0, "points": fresh_score},
                "divergence": {"value": div_bps, "points": abs(div_bps) * 5},
            }
            top = max(comps, key=lambda k: comps[k]["points"])
            score = min(100.0, max(c["points"] for c in comps.values()))
            scores.append(
                (bucket, venue, symbol, asset, score, top, json.dumps(comps), 0.5, div_bps, 480.0 if quiet else 1.0)
            )
    await conn.executemany(
        "INSERT INTO ops.risk_scores (bucket, venue, symbol, asset, score, top_component, components, spread_bps, "
        "divergence_bps, freshness_s) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)",
        scores,
    )

    events = [
        # venue, symbol, rule, severity, state, opened s ago, fired s ago, resolved s ago, peak, threshold, inhibited
        ("hyperliquid", "ETH", "stale_feed", "critical", "firing", 480, 420, None, 480.0, 60.0, None),
        ("hyperliquid", "*", "feed_down", "critical", "firing", 470, 410, None, 1.0, 1.0, None),
        ("binance", "BTCUSDT", "spread_wide", "warning", "pending", 120, None, None, 4.2, 3.0, None),
        ("binance", "ETHUSDT", "depth_drop", "warning", "cancelled", 1800, None, 1700, 55.0, 50.0, "feed_down binance"),
        (
            "hyperliquid",
            "BTC",
            "divergence",
            "info",
            "resolved",
            3 * 3600,
            3 * 3600 - 60,
            3 * 3600 - 600,
            12.0,
            10.0,
            None,
        ),
        (
            "binance",
            "BTCUSDT",
            "spread_wide",
            "warning",
            "resolved",
            30 * 3600,
            30 * 3600 - 60,
            29 * 3600,
            6.0,
            3.0,
            None,
        ),
    ]
    ids = []
    for venue, symbol, rule, sev, state, opened, fired, resolved, peak, thr, inhibited in events:
        ids.append(
            await conn.fetchval(
                "INSERT INTO ops.risk_events (venue, symbol, rule, severity, state, opened_at, fired_at, resolved_at, "
                "first_seen, last_seen, peak_value, last_value, threshold, inhibited_by, message) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6, $9, $10, $10, $11, $12, $13) RETURNING id",
                venue,
                symbol,
                rule,
                sev,
                state,
                _s(now, opened),
                _s(now, fired) if fired else None,
                _s(now, resolved) if resolved else None,
                _s(now, resolved or 60),
                peak,
                thr,
                inhibited,
                f"{rule} on {venue} {symbol}",
            )
        )
    await conn.executemany(
        "INSERT INTO ops.alert_deliveries (event_id, sink, kind, attempt, status, http_status, error, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (ids[0], "webhook", "firing", 1, "sent", 200, None, _s(now, 419)),
            (ids[0], "slack", "firing", 1, "failed", 500, "HTTP 500 from slack", _s(now, 419)),
            (ids[0], "slack", "firing", 2, "sent", 200, None, _s(now, 400)),
            (ids[1], "webhook", "firing", 1, "sent", 200, None, _s(now, 409)),
            (ids[4], "webhook", "resolved", 1, "sent", 200, None, _s(now, 3 * 3600 - 600)),
        ],
    )

    await _tower_watching_itself(conn, now)

    runs = []
    for m in range(MINUTES, 0, -1):
        start = _s(now, m * 60)
        runs.append(("heartbeat", start, start + timedelta(milliseconds=5), True, None))
        ok = m != 15
        runs.append(
            (
                "risk_score",
                start + timedelta(seconds=1),
                start + timedelta(seconds=2),
                ok,
                None if ok else "timeout reading features",
            )
        )
    runs.append(("retention", _s(now, 2 * 3600), _s(now, 2 * 3600 - 3), True, None))
    await conn.executemany(
        "INSERT INTO ops.job_runs (job, started_at, finished_at, ok, error) VALUES ($1, $2, $3, $4, $5)", runs
    )

    # Under TSL the background refresh may already have moved the watermark past the older rows;
    # materialize the whole span explicitly, as a backfill would (no-op under Apache).
    await _retry_if_busy(refresh_feature_caggs, conn, now - timedelta(hours=6), now)
    if tsl:
        # The old trades' chunk compressed, as the compression policy would.
        for (chunk,) in await conn.fetch(
            "SELECT c::text FROM show_chunks('ops.raw_trades', older_than => now() - INTERVAL '3 hours') c"
        ):
            await _retry_if_busy(conn.execute, "SELECT compress_chunk($1::regclass, if_not_compressed => true)", chunk)
    await conn.execute("ANALYZE")
    return now


def loaded_clone(server_dsn: str, template: str):
    """A clone of the template loaded with the data set, for a module of read-only tests: yields (dsn, now)
    and drops it afterwards (use as the body of a module-scoped fixture)."""
    name = asyncio.run(tsdb.clone(server_dsn, template))
    dsn = tsdb.with_database(server_dsn, name)

    async def fill() -> datetime:
        conn = await asyncpg.connect(dsn)
        try:
            return await load(conn)
        finally:
            await conn.close()

    try:
        yield dsn, asyncio.run(fill())
    finally:
        asyncio.run(tsdb.drop(server_dsn, name))


async def _tower_watching_itself(conn: asyncpg.Connection, now: datetime) -> None:
    """A firing pipeline alert, and two ingest processes' heartbeats: one healthy, one spilling."""
    await conn.execute(
        "INSERT INTO ops.risk_events (venue, symbol, rule, severity, state, opened_at, fired_at, first_seen, "
        "last_seen, peak_value, last_value, threshold, message) VALUES ('tower', 'retention (jobs service)', "
        "'pipeline_job_failed', 'critical', 'firing', $1, $1, $1, $2, 1, 1, 1, 'pipeline_job_failed on tower')",
        _s(now, 600),
        _s(now, 60),
    )
    await conn.executemany(
        "INSERT INTO ops.ingest_heartbeats (host, pid, venues, queued_groups, pending_rows, spill_bytes, ts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [("ingest-1", 11, ["binance", "okx"], 0, 0, 0, _s(now, m * 60 + 5)) for m in range(5, 0, -1)]
        + [("ingest-2", 22, ["bybit"], 40, 9000, 3 * 1048576, _s(now, m * 60 + 7)) for m in range(5, 0, -1)],
    )


def _depth_samples(now: datetime, seed: int) -> list[tuple]:
    """A depth sample every 5 s per market (its own random stream: the other data stay as they were);
    the quiet feed's books stop with it."""
    rng = random.Random(f"{seed}-depth")
    rows = []
    for venue, symbol, _asset, mid, _half, _lat in MARKETS:
        usual, slip = DEPTH[(venue, symbol)]
        stop = 8 * 60 if (venue, symbol) == QUIET else 0
        for i in range(MINUTES * 60 // 5, stop // 5, -1):
            drained = (venue, symbol) == DEPTH_DRAIN[0] and i * 5 // 60 in DEPTH_DRAIN[1]
            factor = DEPTH_DRAIN[2] if drained else rng.uniform(0.9, 1.1)
            fill = None if (venue, symbol) == UNFILLABLE and i % 10 == 0 else slip / factor
            rows.append(sample(venue, symbol, _s(now, i * 5 + rng.random()), mid, Depth(usual * factor, fill)))
    return rows


def _next_funding(ts: datetime, interval: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=ts.tzinfo)
    return epoch + ((ts - epoch) // interval + 1) * interval


async def _retry_if_busy(fn, *args):
    """A job run that started before its job was paused may still hold the catalog row for a moment."""
    for attempt in range(10):
        try:
            return await fn(*args)
        except (asyncpg.InternalServerError, asyncpg.DuplicateObjectError) as exc:
            if isinstance(exc, asyncpg.DuplicateObjectError):  # the policy compressed it first
                return None
            if "concurrently" not in str(exc) or attempt == 9:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    return None
