"""Risk events end to end: real TimescaleDB, real webhook receiver on loopback, fixed data time."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from jobs.rules import load_rules
from jobs.service import Jobs, run_once
from jobs.settings import JobsSettings
from tests.support.derivs import write_derivs
from tests.support.fixtures import T0
from tests.support.market import Quote
from tests.support.scenarios import after, prepare, spread_blowout
from tests.support.webhooks import webhook_receiver
from tower.cagg_refresh import refresh_feature_caggs

M = timedelta(minutes=1)
RULES = load_rules()
SCENARIO_MINUTES = 50


def minute(n: int):
    return T0 + n * M


def settings_for(receiver, **extra) -> JobsSettings:
    return JobsSettings(
        alert_webhook_url=receiver.url("/hook"),
        alert_slack_url=receiver.url("/slack"),
        jobs_settle_s=10,
        alert_backoff_s=0.01,
        alert_max_attempts=3,
        **extra,
    )


@pytest.fixture
async def pool(db_dsn):
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3)
    yield p
    await p.close()


async def events(conn):
    return await conn.fetch("SELECT * FROM ops.risk_events ORDER BY id")


async def deliveries(conn):
    return await conn.fetch(
        "SELECT sink, kind, attempt, status, http_status, error, event_id FROM ops.alert_deliveries ORDER BY id"
    )


async def test_spread_blowout_goes_pending_firing_resolved_with_two_deliveries_per_sink(conn, pool):
    await prepare(conn, SCENARIO_MINUTES, spread_blowout)
    with webhook_receiver() as rx:
        jobs = Jobs(pool=pool, rules=RULES, settings=settings_for(rx), started_at=T0)
        states = {}
        # Run as the live service does: one pass shortly after each minute closes.
        for n in range(SCENARIO_MINUTES):
            jobs.now = after(n)
            await run_once(jobs)
            evs = await events(conn)
            states[n] = [(e["rule"], e["state"]) for e in evs]

    assert states[29] == []
    assert states[30] == [("spread_blowout", "pending")]
    assert states[31] == states[34] == states[36] == [("spread_blowout", "firing")]
    assert states[37] == states[SCENARIO_MINUTES - 1] == [("spread_blowout", "resolved")]

    (e,) = await events(conn)
    assert (e["venue"], e["symbol"], e["severity"]) == ("binance", "BTCUSDT", "warning")
    assert e["opened_at"] == e["first_seen"] == minute(30)
    assert e["fired_at"] == minute(31)  # held for_minutes = 2
    assert e["last_seen"] == minute(34)
    assert e["resolved_at"] == minute(37)  # clear for clear_minutes = 3
    assert e["inhibited_by"] is None
    z = await conn.fetch(
        "SELECT spread_z FROM ops.risk_scores WHERE venue = 'binance' AND symbol = 'BTCUSDT' "
        "AND bucket >= $1 AND bucket < $2",
        minute(30),
        minute(35),
    )
    assert e["peak_value"] == pytest.approx(max(r["spread_z"] for r in z))
    assert 8 <= e["peak_value"] < 20

    # Exactly firing + resolved on each sink (sinks are sent to in parallel; each in order).
    assert sorted((d["sink"], d["kind"], d["status"], d["attempt"]) for d in await deliveries(conn)) == [
        ("slack", "firing", "sent", 1),
        ("slack", "resolved", "sent", 1),
        ("webhook", "firing", "sent", 1),
        ("webhook", "resolved", "sent", 1),
    ]
    hooks, slack = rx.bodies("/hook"), rx.bodies("/slack")
    assert [h["kind"] for h in hooks] == ["firing", "resolved"]
    assert hooks[0]["event"]["rule"] == "spread_blowout" and hooks[0]["event"]["symbol"] == "BTCUSDT"
    assert hooks[0]["data_time"] == minute(31).isoformat()
    assert hooks[1]["event"]["resolved_at"] == minute(37).isoformat()
    assert [set(s) for s in slack] == [{"text"}, {"text"}]
    assert "firing" in slack[0]["text"] and "BTCUSDT" in slack[0]["text"] and "resolved" in slack[1]["text"]

    # Every market and minute was scored once; the quiet minutes stayed calm.
    assert await conn.fetchval("SELECT count(*) FROM ops.risk_scores") == 6 * SCENARIO_MINUTES
    assert (
        await conn.fetchval(
            "SELECT max(score) FROM ops.risk_scores WHERE NOT (venue = 'binance' AND "
            "symbol = 'BTCUSDT' AND bucket >= $1 AND bucket < $2)",
            minute(30),
            minute(35),
        )
        < 30
    )
    top = await conn.fetchrow(
        "SELECT score, spread_z, top_component, components FROM ops.risk_scores "
        "WHERE venue = 'binance' AND symbol = 'BTCUSDT' AND bucket = $1",
        minute(32),
    )
    spread = RULES.scoring.components["spread"]  # the only component above its low mark
    expected = min(100.0, 100 * (top["spread_z"] - spread.low) / (spread.high - spread.low))
    assert top["top_component"] == "spread"
    assert top["score"] == pytest.approx(expected, abs=1e-3)
    assert json.loads(top["components"])["spread"]["points"] == pytest.approx(expected, abs=1e-3)


async def test_catch_up_gives_the_same_history_and_a_rerun_changes_nothing(conn, pool):
    await prepare(conn, SCENARIO_MINUTES, spread_blowout)
    with webhook_receiver() as rx:
        jobs = Jobs(pool=pool, rules=RULES, settings=settings_for(rx), started_at=T0, now=after(SCENARIO_MINUTES - 1))
        assert await run_once(jobs) == 0  # one catch-up pass over the whole scenario
        (e,) = await events(conn)
        assert (e["state"], e["opened_at"], e["fired_at"], e["last_seen"], e["resolved_at"]) == (
            "resolved",
            minute(30),
            minute(31),
            minute(34),
            minute(37),
        )
        assert sorted((d["sink"], d["kind"]) for d in await deliveries(conn)) == [
            ("slack", "firing"),
            ("slack", "resolved"),
            ("webhook", "firing"),
            ("webhook", "resolved"),
        ]

        snapshot = {
            t: await conn.fetch(f"SELECT * FROM ops.{t} ORDER BY 1, 2, 3")
            for t in ("risk_scores", "risk_events", "alert_outbox", "alert_deliveries")
        }
        # The same pass again, a later one with nothing new closed, and a forced re-score of the range.
        assert await run_once(jobs) == 0
        report = await jobs.risk()
        assert report.minutes == 0
        from jobs.scoring import score_minutes

        await score_minutes(conn, T0, minute(SCENARIO_MINUTES), RULES.scoring)
        for table, rows in snapshot.items():
            assert await conn.fetch(f"SELECT * FROM ops.{table} ORDER BY 1, 2, 3") == rows, table
        assert len(rx.received) == 4
    runs = await conn.fetch("SELECT job, ok FROM ops.job_runs WHERE job <> 'heartbeat' ORDER BY id")
    assert {r["job"] for r in runs} == {"risk", "deliver", "retention"} and all(r["ok"] for r in runs)
    assert await conn.fetchval("SELECT count(*) FROM ops.job_runs WHERE job = 'heartbeat' AND ok") == 2


def binance_down(venue, symbol, m, q):
    return None if venue == "binance" and 15 <= m < 25 else q


async def test_stale_binance_feed_inhibits_its_symbol_alerts(conn, pool):
    await prepare(conn, 30, binance_down)
    with webhook_receiver() as rx:
        jobs = Jobs(pool=pool, rules=RULES, settings=settings_for(rx), started_at=T0, now=after(29))
        assert await run_once(jobs) == 0

    evs = {(e["rule"], e["venue"], e["symbol"]): e for e in await events(conn)}
    assert set(evs) == {
        ("feed_down", "binance", "*"),
        ("stale_quote", "binance", "BTCUSDT"),
        ("stale_quote", "binance", "ETHUSDT"),
        ("stale_quote", "binance", "SOLUSDT"),
    }
    down = evs[("feed_down", "binance", "*")]
    assert (
        down["state"],
        down["severity"],
        down["opened_at"],
        down["fired_at"],
        down["last_seen"],
        down["resolved_at"],
        down["inhibited_by"],
    ) == ("resolved", "critical", minute(15), minute(16), minute(24), minute(26), None)
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        stale = evs[("stale_quote", "binance", symbol)]
        assert stale["inhibited_by"] == "feed_down binance"
        assert (stale["fired_at"], stale["resolved_at"], stale["last_notified_at"]) == (minute(16), minute(26), None)

    # Only the venue-wide alert was sent: firing and resolved, once per sink.
    sent = await deliveries(conn)
    assert {d["event_id"] for d in sent} == {down["id"]}
    assert sorted((d["sink"], d["kind"]) for d in sent) == [
        ("slack", "firing"),
        ("slack", "resolved"),
        ("webhook", "firing"),
        ("webhook", "resolved"),
    ]
    assert len(rx.received) == 4

    # Hyperliquid kept quoting, but with Binance's quote stale there is nothing to diverge from.
    div = await conn.fetch(
        "SELECT bucket, divergence_bps FROM ops.risk_scores WHERE venue = 'hyperliquid' "
        "AND symbol = 'BTC' ORDER BY bucket"
    )
    assert all(r["divergence_bps"] is None for r in div if minute(15) <= r["bucket"] < minute(25))
    assert all(r["divergence_bps"] == 0 for r in div if r["bucket"] < minute(15) or r["bucket"] >= minute(25))


def alerts_sent(sink: str, kind: str, status: str) -> float:
    return REGISTRY.get_sample_value("tower_alerts_sent_total", {"sink": sink, "kind": kind, "status": status}) or 0


async def test_failing_sink_is_retried_recorded_and_does_not_block_scoring(conn, pool):
    await prepare(conn, SCENARIO_MINUTES, spread_blowout)
    retrying_before, sent_before = alerts_sent("webhook", "firing", "retrying"), alerts_sent("slack", "firing", "sent")
    with webhook_receiver() as rx:
        rx.status["/hook"] = 503
        jobs = Jobs(pool=pool, rules=RULES, settings=settings_for(rx), started_at=T0, now=after(SCENARIO_MINUTES - 1))
        await run_once(jobs)

        assert await conn.fetchval("SELECT count(*) FROM ops.risk_scores") == 6 * SCENARIO_MINUTES
        assert (await events(conn))[0]["state"] == "resolved"
        hook = [d for d in await deliveries(conn) if d["sink"] == "webhook"]
        assert [(d["kind"], d["attempt"], d["status"], d["http_status"]) for d in hook] == [
            ("firing", 1, "retrying", 503),
            ("firing", 2, "retrying", 503),
            ("firing", 3, "failed", 503),
        ]
        assert "HTTP 503" in hook[0]["error"]
        # The healthy sink was not held up by the failing one.
        assert [(d["kind"], d["status"]) for d in await deliveries(conn) if d["sink"] == "slack"] == [
            ("firing", "sent"),
            ("resolved", "sent"),
        ]
        assert len(rx.bodies("/slack")) == 2
        assert len(rx.bodies("/hook")) == 3
        # /metrics counts the same attempts the table records.
        assert alerts_sent("webhook", "firing", "retrying") - retrying_before == 2
        assert alerts_sent("slack", "firing", "sent") - sent_before == 1
        outbox = await conn.fetch("SELECT sink, kind, status, attempts FROM ops.alert_outbox ORDER BY id")
        assert ("webhook", "resolved", "queued", 0) in [tuple(r) for r in outbox]

        # The sink comes back: the queued notification goes out on the next run.
        rx.status["/hook"] = 200
        await jobs.deliver()
        assert [b["kind"] for b in rx.bodies("/hook")][-1] == "resolved"
        assert await conn.fetchval("SELECT count(*) FROM ops.alert_outbox WHERE status = 'queued'") == 0

    # A sink nobody listens on: connection errors are recorded the same way.
    refused = JobsSettings(alert_webhook_url="http://127.0.0.1:9/hook", alert_max_attempts=2, alert_backoff_s=0.01)
    await conn.execute("UPDATE ops.alert_outbox SET status = 'queued', attempts = 0 WHERE sink = 'webhook'")
    await Jobs(pool=pool, rules=RULES, settings=refused, started_at=T0).deliver()
    last = (await deliveries(conn))[-1]
    assert last["status"] == "failed" and last["http_status"] is None and "Connect" in last["error"]


async def test_open_event_of_a_disabled_rule_is_resolved_not_left_open(conn, pool, tmp_path):
    await prepare(conn, 34, spread_blowout)
    settings = JobsSettings(jobs_settle_s=10)
    await Jobs(pool=pool, rules=RULES, settings=settings, started_at=T0, now=after(32)).risk()
    assert [e["state"] for e in await events(conn)] == ["firing"]

    (tmp_path / "r.toml").write_text("[rules.spread_blowout]\nenabled = false\n")
    await Jobs(pool=pool, rules=load_rules(tmp_path / "r.toml"), settings=settings, started_at=T0, now=after(33)).risk()
    (e,) = await events(conn)
    assert (e["state"], e["resolved_at"]) == ("resolved", minute(33))
    assert e["message"].endswith("(rule disabled or removed)")


async def test_escalation_and_reminders_reach_the_sinks(conn, pool, tmp_path):
    def worsening(venue, symbol, m, q):
        if (venue, symbol) == ("binance", "BTCUSDT") and 30 <= m < 36:
            return Quote(q.mid, 4.0 if m < 32 else 12.0, q.qty)  # warning, then critical from minute 32
        return q

    await prepare(conn, 45, worsening)
    (tmp_path / "r.toml").write_text("[notify]\nrepeat_minutes = 3\n")
    with webhook_receiver() as rx:
        jobs = Jobs(
            pool=pool, rules=load_rules(tmp_path / "r.toml"), settings=settings_for(rx), started_at=T0, now=after(44)
        )
        await run_once(jobs)
    (e,) = await events(conn)
    assert (e["severity"], e["fired_at"], e["last_seen"], e["resolved_at"]) == (
        "critical",
        minute(31),
        minute(35),
        minute(38),
    )
    hooks = rx.bodies("/hook")
    assert [(h["kind"], h["data_time"], h["event"]["severity"]) for h in hooks] == [
        ("firing", minute(31).isoformat(), "warning"),
        ("escalated", minute(32).isoformat(), "critical"),
        ("reminder", minute(35).isoformat(), "critical"),  # 3 data minutes after the last notification
        ("resolved", minute(38).isoformat(), "critical"),
    ]
    assert [s["text"].split("]")[1].split(":")[0].strip() for s in rx.bodies("/slack")] == [
        "firing",
        "escalated",
        "reminder",
        "resolved",
    ]


def perp_stress(venue, symbol, m):
    if (venue, symbol) == ("hyperliquid", "SOL"):
        return None  # no derivs feed: never an event
    if (venue, symbol) == ("hyperliquid", "BTC") and m in (10, 11, 12):
        return (45.0 if m < 12 else 120.0), 1.0  # mark over the index: warning, then critical
    if (venue, symbol) == ("binance", "SOLUSDT") and m >= 5:
        return 1.0, 60.0  # 0.6 % per 8 h from minute 5 on
    return 1.0, 1.0


PERP_LIQUIDATIONS = [
    ("hyperliquid", "BTC", 3, "sell", 500_000.0),  # under the warning level: nothing opens
    ("binance", "ETHUSDT", 8, "sell", 2_000_000.0),  # warning, fires at once (for_minutes = 1)
    ("binance", "ETHUSDT", 9, "sell", 4_000_000.0),  # 6M in the minute: critical
    ("binance", "ETHUSDT", 9, "buy", 2_000_000.0),
]


async def test_liquidation_burst_basis_blowout_and_funding_spike_open_fire_and_resolve(conn, pool):
    await prepare(conn, 20, lambda v, s, m, q: q)
    await write_derivs(conn, 20, perp_stress, PERP_LIQUIDATIONS)
    await refresh_feature_caggs(conn, T0, minute(20))
    with webhook_receiver() as rx:
        jobs = Jobs(pool=pool, rules=RULES, settings=settings_for(rx), started_at=T0, now=after(19))
        assert await run_once(jobs) == 0

    evs = {(e["rule"], e["venue"], e["symbol"]): e for e in await events(conn)}
    assert set(evs) == {
        ("liquidation_burst", "binance", "ETHUSDT"),
        ("basis_blowout", "hyperliquid", "BTC"),
        ("funding_spike", "binance", "SOLUSDT"),
    }

    burst = evs[("liquidation_burst", "binance", "ETHUSDT")]
    assert (
        burst["state"],
        burst["severity"],
        burst["opened_at"],
        burst["fired_at"],
        burst["last_seen"],
        burst["resolved_at"],
    ) == ("resolved", "critical", minute(8), minute(8), minute(9), minute(14))
    assert burst["peak_value"] == pytest.approx(6_000_000) and burst["threshold"] == 1_000_000

    basis = evs[("basis_blowout", "hyperliquid", "BTC")]
    assert (
        basis["state"],
        basis["severity"],
        basis["opened_at"],
        basis["fired_at"],
        basis["last_seen"],
        basis["resolved_at"],
    ) == ("resolved", "critical", minute(10), minute(11), minute(12), minute(15))
    assert basis["peak_value"] == pytest.approx(120.0) and basis["threshold"] == 30

    funding = evs[("funding_spike", "binance", "SOLUSDT")]
    assert (funding["state"], funding["severity"], funding["opened_at"], funding["fired_at"], funding["last_seen"]) == (
        "firing",
        "critical",
        minute(5),
        minute(7),
        minute(19),
    )
    assert funding["last_value"] == pytest.approx(60.0)

    hooks = [(h["kind"], h["event"]["rule"], h["data_time"]) for h in rx.bodies("/hook")]
    assert sorted(hooks, key=lambda h: (h[2], h[1])) == [
        ("firing", "funding_spike", minute(7).isoformat()),
        ("firing", "liquidation_burst", minute(8).isoformat()),
        ("escalated", "liquidation_burst", minute(9).isoformat()),
        ("firing", "basis_blowout", minute(11).isoformat()),
        ("escalated", "basis_blowout", minute(12).isoformat()),
        ("resolved", "liquidation_burst", minute(14).isoformat()),
        ("resolved", "basis_blowout", minute(15).isoformat()),
    ]
    assert rx.bodies("/hook")[1]["event"]["message"] == (
        "liquidation_burst on binance ETHUSDT: liq_notional 2,000,000 (>= 1,000,000; peak 2,000,000)"
    )
    assert (
        rx.bodies("/hook")[0]["event"]["message"] == "funding_spike on binance SOLUSDT: |funding_8h_bps| 60 "
        "(>= 10; peak 60)"
    )

    # The scores carry the same story: the burst minute's top component is liquidations.
    top = await conn.fetchrow(
        "SELECT top_component, liq_notional FROM ops.risk_scores WHERE venue = 'binance' "
        "AND symbol = 'ETHUSDT' AND bucket = $1",
        minute(9),
    )
    assert (top["top_component"], top["liq_notional"]) == ("liquidations", pytest.approx(6_000_000))
    # The market without a derivs feed stayed calm.
    assert (
        await conn.fetchval("SELECT max(score) FROM ops.risk_scores WHERE venue = 'hyperliquid' AND symbol = 'SOL'")
        == 0
    )
