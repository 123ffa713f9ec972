"""Market rules do not fire on incomplete minutes (ops.features_1m.complete false) unless the rule says
fire_on_incomplete; an event that does fire on one records it (risk_events.incomplete_at)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from jobs.rules import load_rules
from jobs.service import Jobs, run_once
from jobs.settings import JobsSettings
from tests.support.fixtures import T0
from tests.support.scenarios import after, prepare, spread_blowout
from tests.support.webhooks import webhook_receiver

M = timedelta(minutes=1)
MINUTES = 40


@pytest.fixture
async def pool(db_dsn):
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3)
    yield p
    await p.close()


async def run_scenario(conn, pool, rules) -> list[asyncpg.Record]:
    await prepare(conn, MINUTES, spread_blowout)
    # An open gap over the blowout's minutes (a hole the venue's REST could not fill).
    await conn.execute(
        "INSERT INTO ops.feed_gaps (venue, symbol, stream, from_ts, to_ts, cause) "
        "VALUES ('binance', 'BTCUSDT', 'aggTrade', $1, $2, 'reconnect')",
        T0 + 28 * M,
        T0 + 38 * M,
    )
    with webhook_receiver() as rx:
        settings = JobsSettings(alert_webhook_url=rx.url("/hook"), jobs_settle_s=10, alert_backoff_s=0.01)
        jobs = Jobs(pool=pool, rules=rules, settings=settings, started_at=T0)
        for n in range(MINUTES):
            jobs.now = after(n)
            await run_once(jobs)
    return await conn.fetch("SELECT rule, state, incomplete_at FROM ops.risk_events WHERE rule = 'spread_blowout'")


async def test_an_incomplete_minute_does_not_raise_a_spread_event(conn, pool):
    assert await run_scenario(conn, pool, load_rules()) == []
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM ops.features_1m WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND NOT complete"
        )
        == 11
    )  # minutes 28..38


async def test_a_rule_with_fire_on_incomplete_fires_and_says_the_minute_was_incomplete(conn, pool, tmp_path):
    override = tmp_path / "rules.toml"
    override.write_text("[rules.spread_blowout]\nfire_on_incomplete = true\n")
    (event,) = await run_scenario(conn, pool, load_rules(override))
    assert event["state"] in ("firing", "resolved")
    assert event["incomplete_at"] is not None and T0 + 28 * M <= event["incomplete_at"] <= T0 + 38 * M
