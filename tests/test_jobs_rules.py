"""Rules files (validation errors a user sees) and the event lifecycle, minute by minute."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.lifecycle import step
from jobs.rules import Rule, RulesError, load_rules
from tests.support.fixtures import T0
from tower.cli import main

M = timedelta(minutes=1)


def write(tmp_path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_bad_rules_file_fails_naming_the_field(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "[rules.spread_blowout]\nfor_minutes = 0\n")
    monkeypatch.setenv("TOWER_DSN", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    assert main(["jobs", "--once", "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert "rules.spread_blowout.for_minutes: must be >= 1" in err
    assert str(path) in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rules.x]\nmetric = 'spread_z'\n", "rules.x: set at least one threshold"),
        ("[rules.x]\nmetric = 'nope'\nwarning = 1\n", "rules.x: metric 'nope' is not a symbol metric"),
        ("[rules.spread_blowout]\nwarning = 30\n", "thresholds must get stricter with severity"),
        ("[rules.spread_blowout]\nclear_at = 10\n", "rules.spread_blowout: clear_at (10.0) must be on the clear side"),
        (
            "[rules.spread_blowout]\ninhibited_by = ['price_jump']\n",
            "rules.spread_blowout.inhibited_by: 'price_jump' is not a venue-scope rule (known: feed_down)",
        ),
        ("[rules.spread_blowout]\nfor_minuts = 3\n", "rules.spread_blowout.for_minuts: unknown field"),
        ("[scoring.components.depth]\nhigh = 10\n", "scoring.components.depth: high (10.0) must be greater than low"),
        ("[scoring]\nbaseline_minutes = 'x'\n", "scoring.baseline_minutes"),
        ("[rules.spread_blowout\n", "not valid TOML"),
    ],
)
def test_rule_errors_say_what_to_fix(tmp_path, text, message):
    with pytest.raises(RulesError, match="rules file .*" + _escape(message)):
        load_rules(write(tmp_path, text))


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_a_file_overrides_only_what_it_names(tmp_path):
    rules = load_rules(
        write(
            tmp_path,
            "[rules.spread_blowout]\nfor_minutes = 4\n[rules.latency_spike]\n"
            "enabled = false\n[notify]\nrepeat_minutes = 30\n",
        )
    )
    defaults = load_rules()
    assert rules.rules["spread_blowout"].for_minutes == 4
    assert rules.rules["spread_blowout"].warning == defaults.rules["spread_blowout"].warning
    assert "latency_spike" not in rules.enabled("symbol") and "latency_spike" in defaults.enabled("symbol")
    assert rules.notify.repeat_minutes == 30
    with pytest.raises(RulesError, match="not found"):
        load_rules(tmp_path / "missing.toml")


def test_service_settings_name_the_variable(monkeypatch):
    from jobs.settings import JobsSettings
    from tower.settings import ConfigError, load

    monkeypatch.delenv("TOWER_ALERT_SLACK_URL", raising=False)
    monkeypatch.setenv("TOWER_JOBS_CATCHUP", "90s")
    with pytest.raises(ConfigError, match="TOWER_JOBS_CATCHUP: .*at least 2m"):
        load(JobsSettings)
    monkeypatch.setenv("TOWER_JOBS_CATCHUP", "6h")
    monkeypatch.setenv("TOWER_ALERT_WEBHOOK_URL", "hooks.example.com/x")
    with pytest.raises(ConfigError, match="TOWER_ALERT_WEBHOOK_URL: .*http"):
        load(JobsSettings)
    monkeypatch.setenv("TOWER_ALERT_WEBHOOK_URL", "https://hooks.example.com/x")
    settings = load(JobsSettings)
    assert settings.jobs_catchup == timedelta(hours=6)
    assert settings.sinks() == {"webhook": "https://hooks.example.com/x"}


# The lifecycle on its own: one market, one rule, one value per minute.
RULE = Rule(metric="spread_z", warning=8, critical=20, clear_at=4, for_minutes=2, clear_minutes=2)


def run(values, rule=RULE, inhibited=None, repeat=timedelta(hours=4)):
    """Feed values minute by minute; returns [(minute, state, severity, notify)] and the last event."""
    event, out = None, []
    for n, value in enumerate(values):
        inh = inhibited(n) if inhibited else None
        s = step("spread_blowout", rule, event, "binance", "BTCUSDT", T0 + n * M, value, inh, repeat)
        if s.event is not None:
            event = s.event if s.event.open else None
            out.append((n, s.event.state, s.event.severity, s.notify))
    return out, event


def test_severity_escalates_while_firing_and_never_drops():
    out, _ = run([10, 10, 25, 9, 3, 3])
    assert out == [
        (0, "pending", "warning", None),
        (1, "firing", "warning", "firing"),
        (2, "firing", "critical", "escalated"),
        (3, "firing", "critical", None),
        (4, "firing", "critical", None),
        (5, "resolved", "critical", "resolved"),
    ]


def test_pending_that_clears_is_cancelled_without_a_notification():
    out, event = run([10, 2, 2])
    assert out == [(0, "pending", "warning", None), (1, "cancelled", "warning", None)]
    assert event is None


def test_hysteresis_keeps_firing_between_clear_at_and_the_threshold():
    out, _ = run([10, 10, 6, 6, 6, 3, 3])  # 6 is below warning (8) but above clear_at (4)
    assert [o[1] for o in out] == ["pending", "firing", "firing", "firing", "firing", "firing", "resolved"]
    assert out[-1][0] == 6


def test_missing_data_counts_as_clear():
    out, _ = run([10, 10, None, None])
    assert out[-1] == (3, "resolved", "warning", "resolved")


def test_reminders_repeat_while_firing():
    out, _ = run([10] * 8, repeat=timedelta(minutes=3))
    assert [(n, note) for n, _s, _sev, note in out if note] == [(1, "firing"), (4, "reminder"), (7, "reminder")]


def test_inhibited_event_is_announced_when_the_inhibition_lifts_while_firing():
    out, event = run([10] * 6, inhibited=lambda n: "feed_down binance" if n < 4 else None)
    assert [(n, note) for n, _s, _sev, note in out if note] == [(4, "firing")]
    assert event.inhibited_by is None and event.last_notified_at == T0 + 4 * M


def test_inhibited_for_its_whole_life_sends_nothing():
    out, _ = run([10, 10, 10, 1, 1], inhibited=lambda n: "feed_down binance")
    assert [note for *_, note in out] == [None] * 5
    assert out[-1][1] == "resolved"


def test_below_rules_and_absolute_values():
    cover = Rule(metric="coverage", direction="below", warning=0.5, critical=0.1, for_minutes=1, clear_minutes=1)
    assert (cover.severity_of(0.6), cover.severity_of(0.3), cover.severity_of(0.05)) == (None, "warning", "critical")
    div = Rule(metric="divergence_bps", absolute=True, warning=25, for_minutes=1, clear_minutes=1)
    assert div.severity_of(-30) == "warning" and div.severity_of(10) is None
