"""Settings and duration parsing: the errors a user sees for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tower.cagg_refresh import widen
from tower.durations import format_duration, parse_duration
from tower.settings import ConfigError, DatabaseSettings, load


def test_durations_parse_the_units_users_type():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1m") == timedelta(minutes=1)  # minutes, never months
    assert parse_duration("off") is None
    assert format_duration(timedelta(days=14)) == "14d"
    assert format_duration(timedelta(minutes=90)) == "90m"
    for bad in ("", "0d", "-1d", "3 months", "1.5h"):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)


def test_missing_and_malformed_dsn_name_the_variable(monkeypatch):
    monkeypatch.delenv("TOWER_DSN", raising=False)
    with pytest.raises(ConfigError, match="TOWER_DSN is not set"):
        load(DatabaseSettings)
    monkeypatch.setenv("TOWER_DSN", "mysql://localhost/x")
    with pytest.raises(ConfigError, match="TOWER_DSN: .*postgresql://"):
        load(DatabaseSettings)


def test_refresh_windows_are_widened_to_whole_buckets():
    t = datetime(2026, 1, 1, 10, 17, 30, tzinfo=UTC)
    lo, hi = widen(t, t + timedelta(seconds=10), timedelta(hours=1))
    assert (lo, hi) == (datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC))
    lo, hi = widen(t, t + timedelta(minutes=2), timedelta(minutes=1))
    assert (lo, hi) == (datetime(2026, 1, 1, 10, 17, tzinfo=UTC), datetime(2026, 1, 1, 10, 20, tzinfo=UTC))
