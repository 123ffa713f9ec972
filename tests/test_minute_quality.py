"""Quality on every minute of ops.features_1m: gaps overlapping it, quarantined messages, backfilled trades,
and `complete` (no open gap, book coverage >= 0.05)."""

from __future__ import annotations

from datetime import timedelta

from ingest.writer import SQL_DIR
from tests.support.fixtures import T0, at, insert_book
from tower.cagg_refresh import refresh_feature_caggs

QUALITY = (
    "SELECT bucket, gaps, rejected, backfilled_trades, complete FROM ops.features_1m "
    "WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND bucket >= $1 AND bucket < $2 ORDER BY bucket"
)


async def test_quality_columns_follow_gaps_rejections_and_backfill(conn):
    # Minutes 0 and 1: a book update every second; minute 2: only 2 seconds of 60 (thin, not just quiet).
    seconds = [*range(0, 120), 120, 150]
    await insert_book(conn, [("binance", "BTCUSDT", at(s), at(s + 0.1), 100.0, 1.0, 100.1, 1.0, s) for s in seconds])
    gap = await conn.fetchval(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, from_id, to_id, missing, from_ts, to_ts, cause) "
        "VALUES ('binance', 'BTCUSDT', 'aggTrade', 1, 3, 1, $1, $2, 'id_jump') RETURNING id",
        at(10),
        at(20),
    )
    await conn.execute(
        "INSERT INTO ops.rejected_messages (recv_ts, venue, stream, symbol, reason, raw) "
        "VALUES ($1, 'binance', 'aggTrade', 'BTCUSDT', 'crossed_book', '{}'), "
        "($1, 'binance', 'aggTrade', 'ETHUSDT', 'crossed_book', '{}')",
        at(5),
    )
    await conn.execute(
        "INSERT INTO ops.raw_trades (venue, symbol, ts, recv_ts, trade_id, price, qty, side, source) VALUES "
        "('binance', 'BTCUSDT', $1, now(), '1', 100, 1, 'buy', 'ws'), "
        "('binance', 'BTCUSDT', $2, now(), '2', 100, 1, 'buy', 'rest')",
        at(9),
        at(15),
    )
    await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=3))
    rows = [tuple(r) for r in await conn.fetch(QUALITY, T0, T0 + timedelta(minutes=3))]
    assert rows == [
        (T0, 1, 1, 1, False),  # the open gap makes the minute incomplete; ETHUSDT's rejection is not ours
        (T0 + timedelta(minutes=1), 0, 0, 0, True),
        (T0 + timedelta(minutes=2), 0, 0, 0, False),  # 2 of 60 seconds covered
    ]
    await conn.execute(
        "UPDATE ops.feed_gaps SET resolution = 'backfilled', backfilled = 1, resolved_at = now() WHERE id = $1", gap
    )
    first = await conn.fetchrow(QUALITY, T0, T0 + timedelta(minutes=1))
    assert (first["gaps"], first["complete"]) == (1, True)  # still counted, no longer open
    hour = await conn.fetchrow(
        "SELECT gaps, rejected, backfilled_trades FROM ops.features_1h WHERE venue = 'binance' AND bucket = $1",
        T0.replace(minute=0),
    )
    assert tuple(hour) == (1, 1, 1)


async def test_completeness_ledger_counts_the_day(conn):
    # 90 covered minutes, one of them under an open gap; a backfilled gap the next minute.
    await insert_book(
        conn, [("binance", "BTCUSDT", at(s), at(s + 0.1), 100.0, 1.0, 100.1, 1.0, s) for s in range(0, 90 * 60, 2)]
    )
    await conn.execute(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, from_ts, to_ts, cause, resolution, resolved_at) VALUES "
        "('binance', 'BTCUSDT', 'aggTrade', $1, $1, 'id_jump', NULL, NULL), "
        "('binance', 'BTCUSDT', 'aggTrade', $2, $2, 'id_jump', 'backfilled', now())",
        at(100),
        at(130),
    )
    await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=90))
    row = await conn.fetchrow(
        "SELECT * FROM ops.completeness_daily WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND day = $1",
        T0.replace(hour=0),
    )
    assert (row["minutes_with_data"], row["minutes_complete"]) == (90, 89)
    assert (row["gaps"], row["gaps_backfilled"], row["gaps_open"]) == (2, 1, 1)
    assert row["pct_complete"] == round(100 * 89 / 1440, 2)  # a past day: of all its 1440 minutes


async def test_a_depth_book_break_leaves_trade_and_l1_minutes_complete_and_is_never_backfilled(conn):
    # A depth resync says depth samples are missing, not trades or L1 updates: the minute stays complete,
    # and the backfill (which reads trade history over REST) is never offered the break.
    await insert_book(conn, [("binance", "BTCUSDT", at(s), at(s + 0.1), 100.0, 1.0, 100.1, 1.0, s) for s in range(60)])
    await conn.execute(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, from_id, to_id, missing, from_ts, to_ts, cause) "
        "VALUES ('binance', 'BTCUSDT', 'depth', 10, 14, NULL, $1, $2, 'seq_break')",
        at(10),
        at(20),
    )
    await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=1))
    row = await conn.fetchrow(QUALITY, T0, T0 + timedelta(minutes=1))
    assert (row["gaps"], row["complete"]) == (0, True)
    offered = await conn.fetch((SQL_DIR / "open_gaps.sql").read_text(), "binance", ["BTCUSDT"], T0 - timedelta(days=1))
    assert offered == []
    assert await conn.fetch((SQL_DIR / "gap_markets.sql").read_text(), T0 - timedelta(days=1), None) == []
