"""The Risk Monitor cards read what the risk scorer really writes (not a hand-made fixture)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from jobs.rules import load_rules
from jobs.scoring import score_minutes
from metabase import spec
from tests.support.card_checks import run_as_readonly
from tests.support.fixtures import T0
from tests.support.market import Quote, write_market
from tower.cagg_refresh import refresh_feature_caggs

M = timedelta(minutes=1)


def card(dashboard_key: str, card_key: str):
    for d in spec.load_all():
        for c in d.cards:
            if d.key == dashboard_key and c.key == card_key:
                return d, c
    raise KeyError(card_key)


def binance_btc_spread_blows_out(venue, symbol, m, q: Quote):
    if (venue, symbol) == ("binance", "BTCUSDT") and m >= 25:
        return Quote(q.mid, q.spread_bps * 30, q.qty)
    return q


async def test_risk_cards_show_the_scorers_components(conn):
    await write_market(conn, 30, binance_btc_spread_blows_out)
    await refresh_feature_caggs(conn, T0, T0 + 30 * M)
    await score_minutes(conn, T0, T0 + 30 * M, load_rules().scoring)
    hours = str(math.ceil((datetime.now(UTC) - T0).total_seconds() / 3600) + 1)

    stored = await conn.fetchrow(
        "SELECT top_component, components FROM ops.risk_scores WHERE venue = 'binance' AND symbol = 'BTCUSDT' "
        "ORDER BY bucket DESC LIMIT 1"
    )
    components = json.loads(stored["components"])
    assert stored["top_component"] == "spread"

    d, c = card("risk_monitor", "current_risk")
    current = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    (row,) = [dict(zip(current.columns, r, strict=True)) for r in current.rows]
    assert row["top_component"] == "spread"
    assert row["top_component_score"] == round(components["spread"]["points"], 1)
    assert row["top_component_score"] > 0

    d, c = card("risk_monitor", "score_components")
    parts = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    shown = {r[parts.columns.index("component")]: r[parts.columns.index("component_score")] for r in parts.rows}
    points = {k: round(v["points"], 1) for k, v in components.items() if round(v["points"], 1) > 0}
    top = sorted(points, key=lambda k: (-points[k], k))[:3]
    assert len(components) > 3 and list(shown) == top  # the largest few, not every zero
    assert list(shown.values()) == [points[k] for k in top]
    assert top[0] == "spread"


async def test_score_components_show_funding_basis_and_liquidations(conn):
    from tests.support.derivs import write_derivs

    def stressed(venue, symbol, m):
        if (venue, symbol) == ("hyperliquid", "SOL"):
            return None  # no derivs feed
        return (57.5, 27.5) if (venue, symbol) == ("binance", "BTCUSDT") else (1.0, 1.0)

    await write_market(conn, 3)
    await write_derivs(conn, 3, stressed, [("binance", "BTCUSDT", 2, "sell", 3_812_500.0)])
    await refresh_feature_caggs(conn, T0, T0 + 3 * M)
    await score_minutes(conn, T0, T0 + 3 * M, load_rules().scoring)
    hours = str(math.ceil((datetime.now(UTC) - T0).total_seconds() / 3600) + 1)

    d, c = card("risk_monitor", "score_components")
    parts = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    rows = {r[parts.columns.index("component")]: dict(zip(parts.columns, r, strict=True)) for r in parts.rows}
    assert {
        k: (rows[k]["component_score"], rows[k]["component_value"]) for k in ("funding", "basis", "liquidations")
    } == {"funding": (50.0, 27.5), "basis": (50.0, 57.5), "liquidations": (75.0, 3_812_500.0)}
    assert [r[parts.columns.index("component")] for r in parts.rows][:3] == ["liquidations", "basis", "funding"]

    d, c = card("risk_monitor", "current_risk")
    current = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    assert current.column("top_component") == ["liquidations"]

    none = await run_as_readonly(
        conn, *card("risk_monitor", "score_components"), {"hours": hours, "venue": "hyperliquid", "symbol": "SOL"}
    )
    shown = none.column("component")
    assert not {"funding", "basis", "liquidations"} & set(shown)  # no derivs feed: 0 points, not listed
    assert all(score > 0 for score in none.column("component_score")) and len(shown) <= 3


async def test_score_components_show_liquidity_where_a_book_drained_and_nothing_without_books(conn):
    from tests.support.depth import Depth, write_depth

    def drained_at_the_end(venue, symbol, m):
        return Depth(2e6 * (0.2 if m == 14 else 1 + 0.05 * (m % 3)), 0.5)  # 80 % of the book gone at minute 14

    await write_market(conn, 15)
    await write_depth(conn, [("binance", "BTCUSDT", 50_000.0)], 15, drained_at_the_end)
    await refresh_feature_caggs(conn, T0, T0 + 15 * M)
    await score_minutes(conn, T0, T0 + 15 * M, load_rules().scoring)
    hours = str(math.ceil((datetime.now(UTC) - T0).total_seconds() / 3600) + 1)
    stored = await conn.fetchrow(
        "SELECT liquidity_drop_pct, components FROM ops.risk_scores WHERE venue = 'binance' AND symbol = 'BTCUSDT' "
        "AND bucket = $1",
        T0 + 14 * M,
    )
    liquidity = json.loads(stored["components"])["liquidity"]
    assert 75 < stored["liquidity_drop_pct"] < 85 and liquidity["points"] > 0

    d, c = card("risk_monitor", "score_components")
    parts = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    (row,) = [
        dict(zip(parts.columns, r, strict=True))
        for r in parts.rows
        if r[parts.columns.index("component")] == "liquidity"
    ]
    assert (row["component_score"], row["component_value"]) == (
        round(liquidity["points"], 1),
        round(stored["liquidity_drop_pct"], 3),
    )
    assert parts.rows[0][parts.columns.index("component")] == "liquidity"
    d, c = card("risk_monitor", "current_risk")
    current = await run_as_readonly(conn, d, c, {"hours": hours, "venue": "binance", "symbol": "BTCUSDT"})
    assert current.column("top_component") == ["liquidity"]

    # A market without full books: no liquidity row at all.
    other = await run_as_readonly(
        conn, *card("risk_monitor", "score_components"), {"hours": hours, "venue": "binance", "symbol": "ETHUSDT"}
    )
    assert "liquidity" not in other.column("component")
