"""OKX v5 swap connector against a loopback server speaking OKX's public stream and instrument REST,
into the database: contract sizes convert contracts to base units."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.sim import okx_server as okx
from ingest.sim.okx_server import OkxServer
from ingest.venues.okx import Okx
from tests.support.ingest_helpers import running, wait_until
from tower.cagg_refresh import refresh_feature_caggs


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


T0 = ms(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
BTC = "BTC-USDT-SWAP"


@pytest.fixture
async def server():
    s = await OkxServer().start()
    yield s
    await s.stop()


def venue(server: OkxServer, symbols=(BTC,), **kw) -> Okx:
    return Okx(list(symbols), ws_url=server.url, rest_url=server.rest_url, **kw)


async def subscribed(server: OkxServer, inst: str = BTC) -> None:
    await server.wait_subscribed(f"trades:{inst}")
    await server.wait_subscribed(f"bbo-tbt:{inst}")


async def test_contracts_become_base_units_on_every_channel(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [venue(server)], tmp_path):
        await subscribed(server)
        await server.wait_subscribed("index-tickers:BTC-USDT")
        await server.wait_subscribed("liquidation-orders:SWAP")
        await server.publish(okx.trade(BTC, "130639474", "91000.1", "5", "buy", T0))  # 5 contracts = 0.05 BTC
        await server.publish(okx.trade(BTC, "130639475", "91000.0", "120", "sell", T0 + 2))
        await server.publish(okx.bbo(BTC, ("91000.0", "340"), ("91000.1", "12"), T0 + 3, 900))
        await server.publish(okx.mark_price(BTC, "91012.0", T0 + 4))
        await server.publish(okx.index_ticker("BTC-USDT", "91000.0", T0 + 5))
        await server.publish(okx.funding_rate(BTC, "0.0002", T0 + 4 * 3600_000, T0 + 8 * 3600_000, T0 + 6))
        await server.publish(okx.open_interest(BTC, "2216113", T0 + 7))
        await server.publish(okx.mark_price(BTC, "91013.0", T0 + 9))  # now paired with the index of T0 + 5
        await server.publish(okx.liquidation(BTC, "sell", "90500.0", "30", T0 + 8))
        await server.publish(okx.liquidation("DOGE-USDT-SWAP", "buy", "0.1", "1000", T0 + 8))  # not ours: ignored
        await wait_until(conn, "SELECT count(*) FROM ops.raw_liquidations", 1)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_derivs", 5)
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 2)
    trades = await conn.fetch("SELECT trade_id, price, qty, side FROM ops.raw_trades ORDER BY ts")
    assert [tuple(r) for r in trades] == [
        ("130639474", 91000.1, pytest.approx(0.05), "buy"),
        ("130639475", 91000.0, pytest.approx(1.2), "sell"),
    ]
    book = await conn.fetchrow("SELECT bid_px, bid_qty, ask_px, ask_qty, update_id FROM ops.raw_book_l1")
    assert tuple(book) == (91000.0, pytest.approx(3.4), 91000.1, pytest.approx(0.12), 900)
    derivs = await conn.fetch("SELECT * FROM ops.raw_derivs ORDER BY ts")
    assert [(r["mark_px"], r["index_px"], r["funding_rate"], r["open_interest"]) for r in derivs] == [
        (91012.0, None, None, None),
        (None, 91000.0, None, None),
        (None, None, 0.0002, None),
        (None, None, None, pytest.approx(22161.13)),
        (91013.0, 91000.0, None, None),
    ]
    funding = derivs[2]
    assert funding["funding_interval"] == timedelta(hours=4)
    assert ms(funding["next_funding_ts"]) == T0 + 4 * 3600_000
    liq = await conn.fetchrow("SELECT side, price, qty FROM ops.raw_liquidations")
    assert tuple(liq) == ("sell", 90500.0, pytest.approx(0.3))
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0
    # Mark and index come on separate channels; a mark carries the index in effect: one basis sample.
    minute = datetime.fromtimestamp(T0 / 1000, UTC)
    await refresh_feature_caggs(conn, minute, minute + timedelta(minutes=1))
    f = await conn.fetchrow("SELECT * FROM ops.derivs_features_1m WHERE venue = 'okx' AND bucket = $1", minute)
    assert f["basis_bps_mean"] == pytest.approx(13 / 91000 * 1e4)
    assert f["funding_8h"] == pytest.approx(0.0004)  # 0.02 % per 4 h
    assert f["liq_sell_notional"] == pytest.approx(90500.0 * 0.3) and f["asset"] == "BTC"


async def test_contract_sizes_from_rest_are_stored_and_activate_the_instrument(server, conn, db_dsn, tmp_path):
    server.contract_values["XRP-USDT-SWAP"] = "100"
    async with running(db_dsn, [venue(server, ["XRP-USDT-SWAP"])], tmp_path):
        await subscribed(server, "XRP-USDT-SWAP")
        await server.publish(okx.trade("XRP-USDT-SWAP", "1", "2.5", "3", "buy", T0))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
    assert await conn.fetchval("SELECT qty FROM ops.raw_trades") == pytest.approx(300.0)
    row = await conn.fetchrow(
        "SELECT asset, quote, contract_size, active FROM ops.instruments "
        "WHERE venue = 'okx' AND symbol = 'XRP-USDT-SWAP'"
    )
    assert tuple(row) == ("XRP", "USDT", 100.0, True)
    assert server.instrument_requests == 1


async def test_without_rest_the_stored_contract_size_is_used_and_unknown_ones_quarantined(
    server, conn, db_dsn, tmp_path
):
    server.rest_down = True
    eth, ada = "ETH-USDT-SWAP", "ADA-USDT-SWAP"
    async with running(db_dsn, [venue(server, [eth, ada])], tmp_path):
        await subscribed(server, eth)
        await subscribed(server, ada)
        await server.publish(okx.trade(eth, "9", "3050", "7", "sell", T0))  # seeded ctVal 0.1 ETH
        await server.publish(okx.trade(ada, "1", "0.9", "10", "buy", T0))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 1)
    assert await conn.fetchval("SELECT qty FROM ops.raw_trades") == pytest.approx(0.7)
    rejected = await conn.fetchrow("SELECT symbol, reason, raw FROM ops.rejected_messages")
    assert (rejected["symbol"], rejected["reason"]) == (ada, "no_contract_size")
    assert orjson.loads(rejected["raw"])["data"][0]["sz"] == "10"  # nothing lost: the raw message is kept


async def test_text_ping_keeps_a_quiet_connection_open(conn, db_dsn, tmp_path):
    server = await OkxServer(idle_timeout_s=0.6).start()
    try:
        async with running(db_dsn, [venue(server, heartbeat_s=0.2, derivs=False)], tmp_path):
            await subscribed(server)
            for i in range(4):
                await server.publish(okx.trade(BTC, str(i), "91000", "1", "buy", T0 + i))
                await asyncio.sleep(0.5)
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 4)
    finally:
        await server.stop()
    assert server.idle_closes == 0 and server.pings >= 3 and server.connections == 1
    assert await conn.fetchval("SELECT count(*) FROM ops.rejected_messages") == 0  # "pong" is not a bad frame


async def test_silent_client_is_dropped_after_the_idle_limit_then_resubscribes(conn, db_dsn, tmp_path):
    server = await OkxServer(idle_timeout_s=0.3).start()
    try:
        async with running(db_dsn, [venue(server, heartbeat_s=3600, derivs=False)], tmp_path):
            await subscribed(server)
            await wait_until(
                conn, "SELECT count(*) FROM ops.connection_events WHERE event = 'disconnect'", lambda n: n >= 1
            )
            await subscribed(server)
            await server.publish(okx.trade(BTC, "77", "91000", "1", "buy", T0))
            await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
    finally:
        await server.stop()
    assert (
        await conn.fetchval("SELECT reason FROM ops.connection_events WHERE event = 'disconnect' ORDER BY ts LIMIT 1")
        == "idle timeout"
    )


def test_one_ack_per_channel_argument():
    v = Okx([BTC, "ETH-USDT-SWAP"], contract_sizes={BTC: 0.01, "ETH-USDT-SWAP": 0.1})
    (route,) = v.routes()
    args = [a for f in route.subscribe for a in orjson.loads(f)["args"]]
    assert route.expected_acks == len(args) == 2 * 6 + 1
    assert {"channel": "index-tickers", "instId": "ETH-USDT"} in args
    assert {"channel": "liquidation-orders", "instType": "SWAP"} in args


async def test_bad_input_is_quarantined_and_errors_recorded(server, conn, db_dsn, tmp_path):
    async with running(db_dsn, [venue(server, derivs=False)], tmp_path):
        await subscribed(server)
        await server.broadcast_raw("garbage")
        await server.broadcast_raw('{"event":"error","code":"60018","msg":"Wrong URL or channel"}')
        await server.publish(okx.trade(BTC, "1", "NaN", "1", "buy", T0))
        await server.publish(okx.trade(BTC, "2", "91000", "1", "hold", T0))
        await server.publish(okx.bbo(BTC, ("91002", "1"), ("91001", "1"), T0 + 1, 5))  # crossed
        await server.broadcast_raw(orjson.dumps(okx.trade("DOGE-USDT-SWAP", "3", "0.1", "1", "buy", T0)).decode())
        await server.publish(okx.trade(BTC, "4", "91000", "2", "sell", T0 + 2))
        await wait_until(conn, "SELECT count(*) FROM ops.raw_trades", 1)
        await wait_until(conn, "SELECT count(*) FROM ops.rejected_messages", 5)
    reasons = sorted(r["reason"].split(":")[0] for r in await conn.fetch("SELECT reason FROM ops.rejected_messages"))
    assert reasons == ["crossed_book", "invalid", "invalid", "malformed_json", "unknown_symbol"]
    assert (
        await conn.fetchval("SELECT reason FROM ops.connection_events WHERE event = 'error'")
        == "60018: Wrong URL or channel"
    )


def test_a_new_swaps_funding_push_without_a_rate_stores_what_it_has():
    # A newly listed swap: fundingTime and nextFundingRate, no fundingRate yet (fields as OKX pushes them).
    v = Okx([BTC], contract_sizes={BTC: 0.01})
    frame = {
        "arg": {"channel": "funding-rate", "instId": BTC},
        "data": [
            {
                "instType": "SWAP",
                "instId": BTC,
                "fundingRate": "",
                "nextFundingRate": "0.0001",
                "fundingTime": str(T0 + 3600_000),
                "nextFundingTime": str(T0 + 5 * 3600_000),
                "method": "next_period",
                "ts": str(T0),
            }
        ],
    }
    parsed = v.parse(orjson.dumps(frame), datetime.now(UTC))
    assert [type(r).__name__ for r in parsed.rows] == ["Derivs"]
    row = parsed.rows[0]
    assert (row.funding_rate, row.funding_interval, ms(row.next_funding_ts)) == (
        None,
        timedelta(hours=4),
        T0 + 3600_000,
    )
    del frame["data"][0]["fundingRate"]  # or the field left out altogether
    frame["data"][0]["ts"] = str(T0 + 1)
    assert [type(r).__name__ for r in v.parse(orjson.dumps(frame), datetime.now(UTC)).rows] == ["Derivs"]
