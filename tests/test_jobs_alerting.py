"""Silences, acknowledgements, grouping, PagerDuty and event history: real TimescaleDB, real loopback sinks."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from jobs.acks import AckError, acknowledge
from jobs.evaluate import Links
from jobs.rules import load_rules
from jobs.service import Jobs, run_once
from jobs.settings import JobsSettings
from tests.support.fixtures import T0
from tests.support.market import Quote
from tests.support.scenarios import after, prepare
from tests.support.webhooks import webhook_receiver

M = timedelta(minutes=1)
RULES = load_rules()


def minute(n: int):
    return T0 + n * M


def sinks_of(rx, **extra) -> JobsSettings:
    return JobsSettings(
        alert_webhook_url=rx.url("/hook"),
        alert_slack_url=rx.url("/slack"),
        alert_pagerduty_routing_key="R0UTING",
        alert_pagerduty_url=rx.url("/pd"),
        metabase_public_url="http://mb.test:3000",
        alert_backoff_s=0.01,
        **extra,
    )


def blowout(symbols: tuple[str, ...], minutes: range, spread_bps=lambda m: 4.0):
    def shape(venue, symbol, m, q):
        if venue == "binance" and symbol in symbols and m in minutes:
            return Quote(q.mid, spread_bps(m), q.qty)
        return q

    return shape


@pytest.fixture
async def pool(db_dsn):
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3)
    yield p
    await p.close()


async def transitions(conn, event_id):
    rows = await conn.fetch(
        "SELECT from_state, to_state, severity, data_time, why FROM ops.risk_event_transitions "
        "WHERE event_id = $1 ORDER BY id",
        event_id,
    )
    return [(r["from_state"], r["to_state"], r["severity"], r["data_time"]) for r in rows]


async def test_a_silence_stops_notifications_and_its_end_announces_the_still_firing_event(conn, pool):
    await prepare(conn, 45, blowout(("BTCUSDT",), range(30, 40)))
    sid = await conn.fetchval(
        "INSERT INTO ops.silences (rule, venue, starts_at, ends_at, created_by, comment) "
        "VALUES ('spread_blowout', 'binance', $1, $2, 'ana', 'maintenance') RETURNING id",
        T0,
        minute(33),
    )
    # A silence on another asset matches nothing here.
    await conn.execute(
        "INSERT INTO ops.silences (asset, starts_at, ends_at, created_by, comment) VALUES ('SOL', $1, $2, 'b', 'x')",
        T0,
        minute(45),
    )
    with webhook_receiver() as rx:
        jobs = Jobs(pool=pool, rules=RULES, settings=sinks_of(rx), started_at=T0, now=after(32))
        assert await run_once(jobs) == 0
        (e,) = await conn.fetch("SELECT * FROM ops.risk_events")
        assert (e["state"], e["fired_at"], e["silenced_by"], e["last_notified_at"]) == ("firing", minute(31), sid, None)
        assert rx.received == [] and await conn.fetchval("SELECT count(*) FROM ops.alert_outbox") == 0

        jobs.now = after(44)
        assert await run_once(jobs) == 0
        hooks = rx.bodies("/hook")
    (e,) = await conn.fetch("SELECT * FROM ops.risk_events")
    assert (e["state"], e["last_seen"], e["resolved_at"], e["silenced_by"]) == (
        "resolved",
        minute(39),
        minute(42),
        None,
    )
    # Announced the minute the silence ended, then resolved: nothing while it lasted.
    assert [(h["kind"], h["data_time"]) for h in hooks] == [
        ("firing", minute(33).isoformat()),
        ("resolved", minute(42).isoformat()),
    ]
    assert [b["event_action"] for b in rx.bodies("/pd")] == ["trigger", "resolve"]
    assert await transitions(conn, e["id"]) == [
        (None, "pending", "warning", minute(30)),
        ("pending", "firing", "warning", minute(31)),
        ("firing", "resolved", "warning", minute(42)),
    ]


async def test_an_event_resolved_while_silenced_sends_nothing(conn, pool):
    await prepare(conn, 40, blowout(("BTCUSDT",), range(30, 35)))
    await conn.execute(
        "INSERT INTO ops.silences (symbol, starts_at, ends_at, created_by, comment) "
        "VALUES ('BTCUSDT', $1, $2, 'ana', 'known issue')",
        T0,
        minute(40),
    )
    with webhook_receiver() as rx:
        await run_once(Jobs(pool=pool, rules=RULES, settings=sinks_of(rx), started_at=T0, now=after(39)))
        assert rx.received == []
    (e,) = await conn.fetch("SELECT state, silenced_by FROM ops.risk_events")
    assert e["state"] == "resolved" and e["silenced_by"] is not None


async def test_an_ack_stops_reminders_only_and_pagerduty_sees_one_alert(conn, pool, tmp_path):
    await prepare(conn, 45, blowout(("BTCUSDT",), range(30, 40), lambda m: 4.0 if m < 36 else 12.0))
    (tmp_path / "r.toml").write_text(
        '[notify]\nrepeat_minutes = 2\n[rules.spread_blowout]\nrunbook_url = "https://rb.test/spread"\n'
    )
    rules = load_rules(tmp_path / "r.toml")
    with webhook_receiver() as rx:
        settings = sinks_of(rx)
        jobs = Jobs(pool=pool, rules=rules, settings=settings, started_at=T0, now=after(33))
        await run_once(jobs)
        (e,) = await conn.fetch("SELECT * FROM ops.risk_events")
        assert [h["kind"] for h in rx.bodies("/hook")] == ["firing", "reminder"]  # 31, then 33

        queued = await acknowledge(conn, e["id"], "ana", "on it", rules, list(settings.sinks()), Links())
        assert queued == 3
        with pytest.raises(AckError, match="already acknowledged"):
            await acknowledge(conn, e["id"], "bob", None, rules, [], Links())
        jobs.now = after(44)
        await run_once(jobs)
        hooks = rx.bodies("/hook")
        pd = rx.bodies("/pd")

    # No reminder after the ack (35, 37, 39 would have been); the escalation and resolution still went out.
    assert [(h["kind"], h["data_time"]) for h in hooks] == [
        ("firing", minute(31).isoformat()),
        ("reminder", minute(33).isoformat()),
        ("acknowledged", minute(33).isoformat()),
        ("escalated", minute(36).isoformat()),
        ("resolved", minute(42).isoformat()),
    ]
    assert hooks[0]["runbook_url"] == "https://rb.test/spread"
    assert hooks[0]["dashboard_url"] == "http://mb.test:3000/search?q=Risk%20Monitor"
    # PagerDuty Events v2: one dedup_key for the whole life of the event.
    assert [b["event_action"] for b in pd] == ["trigger", "trigger", "acknowledge", "trigger", "resolve"]
    assert {b["dedup_key"] for b in pd} == {f"tower-{e['id']}"}
    assert {b["routing_key"] for b in pd} == {"R0UTING"}
    assert pd[0]["payload"]["severity"] == "warning" and pd[3]["payload"]["severity"] == "critical"
    assert pd[0]["payload"]["source"] == "binance BTCUSDT" and "spread_blowout" in pd[0]["payload"]["summary"]
    assert {"href": "https://rb.test/spread", "text": "runbook"} in pd[0]["links"]

    acked = await conn.fetchrow("SELECT acked_at, acked_by, ack_comment FROM ops.risk_events WHERE id = $1", e["id"])
    assert acked["acked_at"] is not None and (acked["acked_by"], acked["ack_comment"]) == ("ana", "on it")
    history = await conn.fetch(
        "SELECT from_state, to_state, severity, data_time, why FROM ops.risk_event_transitions "
        "WHERE event_id = $1 ORDER BY id",
        e["id"],
    )
    assert [(h["from_state"], h["to_state"], h["severity"], h["data_time"]) for h in history] == [
        (None, "pending", "warning", minute(30)),
        ("pending", "firing", "warning", minute(31)),
        ("firing", "firing", "warning", None),
        ("firing", "firing", "critical", minute(36)),
        ("firing", "resolved", "critical", minute(42)),
    ]
    assert [h["why"] for h in history][2:4] == ["acknowledged by ana: on it", "escalated warning -> critical"]


async def test_a_blowout_on_every_symbol_of_a_venue_is_one_notification_per_sink(conn, pool):
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    await prepare(conn, 40, blowout(symbols, range(30, 35)))
    with webhook_receiver() as rx:
        await run_once(Jobs(pool=pool, rules=RULES, settings=sinks_of(rx), started_at=T0, now=after(39)))
        hooks, slack, pd = rx.bodies("/hook"), rx.bodies("/slack"), rx.bodies("/pd")
    evs = await conn.fetch("SELECT id, symbol, fired_at, resolved_at FROM ops.risk_events ORDER BY symbol")
    assert [(e["symbol"], e["fired_at"], e["resolved_at"]) for e in evs] == [
        (s, minute(31), minute(37)) for s in symbols
    ]
    # One firing and one resolved per grouping sink, each listing the three symbols.
    assert [(h["kind"], h["group"]) for h in hooks] == [("firing", 3), ("resolved", 3)]
    assert sorted(e["symbol"] for e in hooks[0]["events"]) == list(symbols)
    assert len(slack) == 2
    assert slack[0]["text"].startswith("3 x spread_blowout firing on binance:")
    assert all(s in slack[0]["text"] for s in symbols) and "search?q=Risk%20Monitor|dashboard>" in slack[0]["text"]
    # PagerDuty keeps one alert per event (its own grouping makes the incident).
    assert sorted(b["dedup_key"] for b in pd if b["event_action"] == "trigger") == sorted(
        f"tower-{e['id']}" for e in evs
    )
    # Every notification of the group is accounted for in the delivery log.
    assert (
        await conn.fetchval("SELECT count(*) FROM ops.alert_deliveries WHERE sink = 'webhook' AND status = 'sent'") == 6
    )


async def test_a_grouped_send_that_fails_is_retried_as_a_group(conn, pool):
    await prepare(conn, 36, blowout(("BTCUSDT", "ETHUSDT"), range(30, 35)))
    with webhook_receiver() as rx:
        rx.status["/hook"] = 503
        settings = JobsSettings(alert_webhook_url=rx.url("/hook"), alert_max_attempts=2, alert_backoff_s=0.01)
        jobs = Jobs(pool=pool, rules=RULES, settings=settings, started_at=T0, now=after(35))
        await run_once(jobs)
        assert len(rx.bodies("/hook")) == 2  # two attempts of one grouped notification
        await conn.execute("UPDATE ops.alert_outbox SET status = 'queued', attempts = 0")
        rx.status["/hook"] = 200
        await jobs.deliver()
        assert [len(b["events"]) for b in rx.bodies("/hook")[2:]] == [2]


def test_silence_and_ack_commands(db_dsn, monkeypatch, capsys):
    import asyncio

    from tower.cli import main

    monkeypatch.setenv("TOWER_DSN", db_dsn)
    for var in ("TOWER_ALERT_WEBHOOK_URL", "TOWER_ALERT_SLACK_URL", "TOWER_ALERT_PAGERDUTY_ROUTING_KEY"):
        monkeypatch.delenv(var, raising=False)
    capsys.readouterr()
    assert (
        main(
            [
                "silence",
                "add",
                "--venue",
                "binance",
                "--symbol",
                "BTCUSDT",
                "--for",
                "2h",
                "--comment",
                "deploy",
                "--by",
                "ana",
            ]
        )
        == 0
    )
    sid = int(capsys.readouterr().out.strip())
    assert main(["silence", "add", "--until", "2020-01-01T00:00:00Z", "--comment", "x"]) == 2
    assert "in the past" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["silence", "add", "--comment", "x"])  # --for or --until is required
    assert "one of the arguments --for --until is required" in capsys.readouterr().err

    assert main(["silence", "list"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[:6] == [str(sid), "yes", "*", "binance", "BTCUSDT", "*"] and row[-2:] == ["ana", "deploy"]
    assert main(["silence", "expire", str(sid)]) == 0
    assert capsys.readouterr().out.strip() == f"silence {sid} expired"
    assert main(["silence", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[1] == "no"
    assert main(["silence", "expire", "999"]) == 2
    assert "no silence 999" in capsys.readouterr().err

    async def open_event() -> int:
        conn = await asyncpg.connect(db_dsn)
        try:
            return await conn.fetchval(
                "INSERT INTO ops.risk_events (venue, symbol, rule, severity, state, opened_at, first_seen, last_seen) "
                "VALUES ('binance', 'BTCUSDT', 'spread_blowout', 'warning', 'firing', $1, $1, $1) RETURNING id",
                T0,
            )
        finally:
            await conn.close()

    event_id = asyncio.run(open_event())
    assert main(["events", "ack", str(event_id), "--by", "ana", "--comment", "looking"]) == 0
    assert capsys.readouterr().out.strip() == f"event {event_id} acknowledged"
    assert main(["events", "ack", str(event_id)]) == 2
    assert "already acknowledged" in capsys.readouterr().err
    assert main(["events", "ack", "424242"]) == 2
    assert "no risk event 424242" in capsys.readouterr().err
