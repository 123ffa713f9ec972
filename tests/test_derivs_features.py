"""ops.derivs_features_1m: basis, normalized funding, OI change and liquidations, exact in both modes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.fixtures import T0, at
from tower.cagg_refresh import refresh_feature_caggs

DERIVS = [
    "venue",
    "symbol",
    "ts",
    "recv_ts",
    "mark_px",
    "index_px",
    "funding_rate",
    "funding_interval",
    "next_funding_ts",
    "open_interest",
]
LIQS = ["venue", "symbol", "ts", "recv_ts", "side", "price", "qty"]
HOUR, EIGHT_HOURS = timedelta(hours=1), timedelta(hours=8)


async def test_basis_funding_and_open_interest_per_minute(conn):
    rows = [
        ("hyperliquid", "BTC", at(1), at(1), 100.10, 100.00, 0.0000125, HOUR, T0 + HOUR, 1000.0),
        ("hyperliquid", "BTC", at(20), at(20), None, None, None, None, None, 1040.0),  # OI-only message
        ("hyperliquid", "BTC", at(40), at(40), 100.00, 100.05, 0.0000125, HOUR, T0 + HOUR, None),
        ("binance", "BTCUSDT", at(2), at(2), 100.02, 100.00, 0.0001, EIGHT_HOURS, T0 + EIGHT_HOURS, 500.0),
    ]
    await conn.copy_records_to_table("raw_derivs", schema_name="ops", records=rows, columns=DERIVS)
    await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=1))
    got = {r["venue"]: r for r in await conn.fetch("SELECT * FROM ops.derivs_features_1m WHERE bucket = $1", T0)}

    hl = got["hyperliquid"]
    assert hl["basis_bps_mean"] == pytest.approx(((0.10 / 100.00) + (-0.05 / 100.05)) / 2 * 1e4)
    assert hl["mark_close"] == pytest.approx(100.00) and hl["index_close"] == pytest.approx(100.05)
    # Hourly funding of 0.00125 % is 0.01 % per 8 h, as Binance quotes it.
    assert hl["funding_8h"] == pytest.approx(0.0001)
    assert hl["funding_annualized"] == pytest.approx(0.0000125 * 24 * 365)
    assert (hl["oi_open"], hl["oi_close"], hl["oi_change"]) == pytest.approx((1000.0, 1040.0, 40.0))
    assert hl["oi_change_pct"] == pytest.approx(0.04)
    assert hl["asset"] == "BTC" and hl["derivs_updates"] == 3 and hl["liquidations"] == 0

    bn = got["binance"]
    assert bn["funding_8h"] == pytest.approx(0.0001)  # the same funding, normalized alike
    assert bn["basis_bps_mean"] == pytest.approx(2.0)


async def test_liquidation_notional_by_side(conn):
    rows = [
        ("binance", "ETHUSDT", at(5), at(5), "sell", 3000.0, 2.0),
        ("binance", "ETHUSDT", at(6), at(6), "sell", 2990.0, 1.0),
        ("binance", "ETHUSDT", at(70), at(70), "buy", 3010.0, 0.5),
    ]
    await conn.copy_records_to_table("raw_liquidations", schema_name="ops", records=rows, columns=LIQS)
    await refresh_feature_caggs(conn, T0, T0 + timedelta(minutes=2))
    got = await conn.fetch(
        "SELECT bucket, liquidations, liq_sell_notional, liq_buy_notional, liq_notional, "
        "liq_largest_notional, mark_close FROM ops.derivs_features_1m "
        "WHERE symbol = 'ETHUSDT' ORDER BY bucket"
    )
    assert [(r["bucket"], r["liquidations"]) for r in got] == [(T0, 2), (T0 + timedelta(minutes=1), 1)]
    assert got[0]["liq_sell_notional"] == pytest.approx(6000.0 + 2990.0)
    assert got[0]["liq_buy_notional"] == 0 and got[0]["liq_largest_notional"] == pytest.approx(6000.0)
    assert got[1]["liq_notional"] == pytest.approx(1505.0)
    assert got[0]["mark_close"] is None  # no derivs data that minute: NULL, not 0


async def test_derivs_tables_refuse_impossible_values(conn):
    import asyncpg

    with pytest.raises(asyncpg.CheckViolationError):
        await conn.copy_records_to_table(
            "raw_liquidations",
            schema_name="ops",
            columns=LIQS,
            records=[("binance", "BTCUSDT", at(1), at(1), "long", 1.0, 1.0)],
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.copy_records_to_table(
            "raw_derivs",
            schema_name="ops",
            columns=DERIVS,
            records=[("binance", "BTCUSDT", at(1), at(1), -1.0, None, None, None, None, None)],
        )
