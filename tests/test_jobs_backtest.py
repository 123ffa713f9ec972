"""`tower rules backtest`: the in-memory replay gives the events the live pass gave, minute by minute,
and touches no live table (real TimescaleDB)."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest

from jobs.backtest import compare, simulate
from jobs.rules import load_rules
from jobs.service import Jobs
from jobs.settings import JobsSettings
from tests.support.fixtures import T0
from tests.support.market import Quote, write_market
from tests.support.scenarios import after
from tower.cagg_refresh import refresh_feature_caggs

M = timedelta(minutes=1)
MINUTES = 180  # three hours at one book update per 10 s: enough for baselines, flaps and a feed outage
LIVE_TABLES = (
    "risk_scores",
    "risk_events",
    "risk_event_transitions",
    "alert_outbox",
    "alert_deliveries",
    "job_cursors",
)


def scripted(venue, symbol, m, q):
    if venue == "binance" and 130 <= m < 138:
        return None  # feed down: its symbol alerts are inhibited
    if (venue, symbol) == ("binance", "BTCUSDT") and (70 <= m < 75 or 88 <= m < 91):
        return Quote(q.mid, 4.0, q.qty)  # two blow-outs within the hour: a flap
    if (venue, symbol) == ("binance", "ETHUSDT") and 100 <= m < 110:
        return Quote(q.mid, 12.0 if m >= 103 else 4.0, q.qty)  # escalates to critical
    if (venue, symbol) == ("hyperliquid", "SOL") and 150 <= m < 156:
        return Quote(q.mid * (1.004 if m % 2 else 1.0), q.spread_bps, q.qty)  # jumps
    return q


def shape_of(e) -> tuple:
    return (
        e.rule if hasattr(e, "rule") else e["rule"],
        *(
            getattr(e, k) if hasattr(e, k) else e[k]
            for k in ("venue", "symbol", "severity", "state", "opened_at", "fired_at", "resolved_at", "last_seen")
        ),
        round(e.peak_value if hasattr(e, "peak_value") else e["peak_value"], 9),
        e.inhibited_by if hasattr(e, "inhibited_by") else e["inhibited_by"],
    )


@pytest.fixture
async def pool(db_dsn):
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3)
    yield p
    await p.close()


async def snapshot(conn) -> dict:
    return {t: await conn.fetch(f"SELECT * FROM ops.{t} ORDER BY 1, 2") for t in LIVE_TABLES}


async def test_backtest_gives_the_live_passes_events_and_leaves_live_tables_alone(conn, pool, tmp_path):
    await conn.execute("UPDATE ops.policy_settings SET retention = NULL WHERE kind = 'hypertable'")
    await write_market(conn, MINUTES, scripted, every_s=10)
    await refresh_feature_caggs(conn, T0, T0 + MINUTES * M)
    rules = load_rules()
    jobs = Jobs(pool=pool, rules=rules, settings=JobsSettings(), started_at=T0)
    for n in range(MINUTES):  # the live service: one pass after each minute closes
        jobs.now = after(n)
        await jobs.risk()
    live = await conn.fetch("SELECT * FROM ops.risk_events ORDER BY opened_at, rule, venue, symbol")
    assert {e["rule"] for e in live} >= {"spread_blowout", "feed_down", "stale_quote", "venue_divergence"}
    before = await snapshot(conn)

    replayed = await simulate(conn, rules, T0, T0 + MINUTES * M)
    key = lambda t: (t[5], t[0], t[1], t[2])  # noqa: E731 - opened_at, rule, venue, symbol
    assert sorted(map(shape_of, replayed), key=key) == sorted(map(shape_of, live), key=key)

    (tmp_path / "slow.toml").write_text("[rules.spread_blowout]\nfor_minutes = 4\n")
    result = await compare(conn, rules, load_rules(tmp_path / "slow.toml"), T0, T0 + MINUTES * M)
    assert await snapshot(conn) == before  # nothing live was written
    now, slow = result["spread_blowout"]["current"], result["spread_blowout"]["candidate"]
    fired = [e for e in live if e["rule"] == "spread_blowout" and e["fired_at"] is not None]
    assert now.fired == len(fired) and now.flaps == 1 and now.median_minutes_to_fire == 1
    assert slow.fired < now.fired and slow.median_minutes_to_fire == 3
    assert result["feed_down"]["current"] == result["feed_down"]["candidate"]
    # Deterministic: the same data gives the same answer.
    assert await compare(conn, rules, load_rules(tmp_path / "slow.toml"), T0, T0 + MINUTES * M) == result


def test_backtest_command_prints_both_rule_sets_as_json(db_dsn, monkeypatch, capsys, tmp_path):
    import asyncio

    from tower.cli import main

    async def setup():
        c = await asyncpg.connect(db_dsn)
        try:
            await write_market(c, 40, scripted, every_s=10)
            await refresh_feature_caggs(c, T0, T0 + 40 * M)
        finally:
            await c.close()

    asyncio.run(setup())
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    monkeypatch.delenv("TOWER_RULES_FILE", raising=False)
    (tmp_path / "off.toml").write_text("[rules.stale_quote]\nenabled = false\n")
    until = (T0 + 40 * M).strftime("%Y-%m-%dT%H:%M:%SZ")
    capsys.readouterr()
    assert (
        main(["rules", "backtest", "--rules", str(tmp_path / "off.toml"), "--until", until, "--since", "1h", "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["until"] == (T0 + 40 * M).isoformat()
    assert doc["rules"]["stale_quote"]["candidate"] is None and doc["rules"]["stale_quote"]["current"]["events"] == 0
    assert main(["rules", "backtest", "--rules", str(tmp_path / "off.toml"), "--until", until]) == 0
    out = capsys.readouterr().out
    assert "events now" in out and "stale_quote" in out and "off" in out
    assert main(["rules", "backtest", "--rules", str(tmp_path / "missing.toml"), "--until", until]) == 2
    assert "not found" in capsys.readouterr().err
