"""Every query in docs/queries.md runs, as tower_readonly, against a migrated database holding the
dashboards' realistic hour of data, and the ones with a known answer in that data give it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.support import dashboard_data

DOC = Path(__file__).resolve().parent.parent / "docs" / "queries.md"
_SECTION = re.compile(r"^## (?P<title>.+?)\n(?P<body>.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
_SQL = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def queries() -> dict[str, str]:
    """title -> SQL, one ```sql block per section."""
    found = {}
    for m in _SECTION.finditer(DOC.read_text()):
        blocks = _SQL.findall(m["body"])
        assert len(blocks) == 1, f"docs/queries.md section {m['title']!r} needs exactly one ```sql block"
        found[m["title"]] = blocks[0]
    return found


QUERIES = queries()
Rows = list[asyncpg.Record]


def _stale_longest(rows: Rows) -> None:
    top = rows[0]
    assert (top["venue"], top["symbol"]) == dashboard_data.QUIET
    assert top["longest_silence"] >= timedelta(minutes=7)


def _silent_now(rows: Rows) -> None:
    silent = {(r["venue"], r["symbol"]) for r in rows}
    assert dashboard_data.QUIET in silent
    assert ("binance", "BTCUSDT") not in silent  # its book updates every 2 s
    assert ("binance", "SOLUSDT") in silent  # active, never ingested: no update at all
    quiet = next(r for r in rows if (r["venue"], r["symbol"]) == dashboard_data.QUIET)
    assert quiet["silent_for"] >= timedelta(minutes=7)


def _spread_percentiles(rows: Rows) -> None:
    for r in rows:
        assert r["p50_bps"] <= r["p90_bps"] <= r["p99_bps"] <= r["widest_bps"]


def _cross_venue(rows: Rows) -> None:
    assert {r["asset"] for r in rows} == {"BTC", "ETH"}
    assert all(r["venues"] == 2 and abs(r["vs_median_bps"]) < 5 for r in rows)


def _basis_peaks(rows: Rows) -> None:
    top = rows[0]
    assert (top["venue"], top["symbol"]) == dashboard_data.BASIS_BLOWOUT[0]
    assert top["peak_basis_bps"] == pytest.approx(dashboard_data.BASIS_BLOWOUT[2], abs=1)


def _fired_and_silenced(rows: Rows) -> None:
    by_rule = {r["rule"]: r for r in rows}
    # The pending spread_wide never fired and the 30-hour-old one is outside the window; the tower's own
    # pipeline alert fired inside it.
    assert set(by_rule) == {
        "stale_feed",
        "feed_down",
        "divergence",
        "depth_drop",
        "pipeline_job_failed",
        "spread_blowout",
    }
    assert by_rule["spread_blowout"]["outcome"] == "silenced by maria: venue maintenance"
    assert by_rule["depth_drop"]["outcome"] == "inhibited: feed_down binance"
    stale = by_rule["stale_feed"]
    assert (stale["outcome"], stale["notifications_sent"], stale["failed_attempts"]) == ("fired", 2, 1)


def _depth_around_burst(rows: Rows) -> None:
    assert {(r["venue"], r["symbol"]) for r in rows} == {("binance", "BTCUSDT")}
    assert all(r["depth_before"] > 0 and r["depth_after"] > 0 for r in rows)
    assert all(r["depth_25bps_before"] > 0 and r["depth_25bps_after"] > 0 for r in rows)


def _thinnest_books(rows: Rows) -> None:
    by_market = {(r["venue"], r["symbol"]): r for r in rows}
    assert set(by_market) == {(v, s) for v, s, *_ in dashboard_data.MARKETS}  # every market with full books
    drained = by_market[dashboard_data.DEPTH_DRAIN[0]]
    assert float(drained["vs_median"]) == pytest.approx(dashboard_data.DEPTH_DRAIN[2], abs=0.02)
    assert drained["worst_slip_bps"] == pytest.approx(0.3 / dashboard_data.DEPTH_DRAIN[2], rel=0.01)
    assert all(float(r["vs_median"]) > 0.5 for k, r in by_market.items() if k != dashboard_data.DEPTH_DRAIN[0])


def _funding(rows: Rows) -> None:
    by_market = {(r["venue"], r["symbol"]): r for r in rows}
    assert by_market[("binance", "BTCUSDT")]["funding_8h_bps"] == pytest.approx(1.0, rel=0.06)
    assert by_market[("hyperliquid", "BTC")]["funding_8h_bps"] == pytest.approx(1.6, rel=0.06)  # hourly x 8


def _latency(rows: Rows) -> None:
    assert [r["venue"] for r in rows] == ["hyperliquid", "binance"]  # ~180 ms against ~40 ms


def _riskiest(rows: Rows) -> None:
    assert (rows[0]["venue"], rows[0]["symbol"], rows[0]["top_component"]) == (*dashboard_data.QUIET, "freshness")


def _rejected(rows: Rows) -> None:
    assert (rows[0]["venue"], rows[0]["reason"], rows[0]["messages"]) == ("hyperliquid", "unknown_symbol", 4)


def _connections(rows: Rows) -> None:
    hl = next(r for r in rows if r["venue"] == "hyperliquid")
    assert (hl["disconnects"], hl["reconnect_attempts"], hl["stale"]) == (1, 2, 1)


def _open_gaps(rows: Rows) -> None:
    assert [(r["venue"], r["stream"]) for r in rows] == [("binance", "aggTrade"), ("hyperliquid", "l2Book")]


def _jobs(rows: Rows) -> None:
    risk = next(r for r in rows if r["job"] == "risk_score")
    assert (risk["failures"], risk["last_error"]) == (1, "timeout reading features")


EXPECTED: dict[str, Callable[[Rows], None]] = {
    "Which markets were stale longest today (last 24 h)": _stale_longest,
    "Which active markets are silent right now": _silent_now,
    "Spread percentiles by hour": _spread_percentiles,
    "Cross-venue basis during an incident window": _cross_venue,
    "Mark vs index basis peaks in a window": _basis_peaks,
    "What fired and what was silenced last night": _fired_and_silenced,
    "Depth before and after a liquidation burst": _depth_around_burst,
    "Thinnest order books in a window": _thinnest_books,
    "Funding across venues, normalized": _funding,
    "Receive latency percentiles per venue": _latency,
    "Riskiest markets right now": _riskiest,
    "Rejected input by reason": _rejected,
    "Disconnects and reconnects per venue": _connections,
    "Open feed gaps": _open_gaps,
    "Jobs service health": _jobs,
}


# A desk muted Hyperliquid SOL's spread for maintenance; the event it caught stayed silent.
SILENCED = """
WITH s AS (
    INSERT INTO ops.silences (venue, symbol, rule, starts_at, ends_at, created_by, comment)
    VALUES ('hyperliquid', 'SOL', 'spread_blowout', now() - INTERVAL '3 hours', now() + INTERVAL '1 hour', 'maria',
            'venue maintenance') RETURNING id)
INSERT INTO ops.risk_events (venue, symbol, rule, severity, state, opened_at, fired_at, first_seen, last_seen,
                             peak_value, last_value, threshold, message, silenced_by)
SELECT 'hyperliquid', 'SOL', 'spread_blowout', 'warning', 'firing', now() - INTERVAL '2 hours',
       now() - INTERVAL '2 hours', now() - INTERVAL '2 hours', now() - INTERVAL '1 hour', 9, 8, 6,
       'spread_blowout on hyperliquid SOL', s.id FROM s
"""


@pytest.fixture(scope="module")
def loaded_dsn(server_dsn, template_db):
    for dsn, now in dashboard_data.loaded_clone(server_dsn, template_db):
        asyncio.run(_execute(dsn, SILENCED))
        yield dsn, now


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run_as_readonly(dsn: str, sql: str) -> Rows:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE tower_readonly")
            return await conn.fetch(sql)
    finally:
        await conn.close()


def test_the_doc_holds_a_dozen_queries_each_with_its_expectation():
    assert len(QUERIES) >= 12
    assert set(QUERIES) == set(EXPECTED), "a query in docs/queries.md without a check here, or the reverse"


@pytest.mark.parametrize("title", list(QUERIES))
async def test_query_runs_as_readonly_and_answers(loaded_dsn, title):
    dsn, _now = loaded_dsn
    try:
        rows = await run_as_readonly(dsn, QUERIES[title])
    except asyncpg.PostgresError as exc:
        pytest.fail(f"docs/queries.md {title!r} failed: {exc.__class__.__name__}: {exc}")
    assert rows, f"docs/queries.md {title!r} returned no rows on the data set"
    EXPECTED[title](rows)
