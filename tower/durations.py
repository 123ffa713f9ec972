"""Durations as users type them on the command line: 30s, 1m, 2h, 30d, 2w (or off)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
OFF = ("off", "none", "never")


def parse_duration(text: str) -> timedelta | None:
    """'2h' -> 2 hours; 'off' -> None (policy removed). 'm' is minutes, never months."""
    if text.strip().lower() in OFF:
        return None
    match = _PATTERN.match(text.lower())
    if not match:
        raise ValueError(
            f"bad duration {text!r}: use a whole number and one of s, m, h, d, w (e.g. 30d, 2h, 1m) or 'off'"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"bad duration {text!r}: must be greater than zero")
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_timeout(text: str) -> timedelta:
    """A session timeout: plain seconds ('60') or a duration ('60s', '2m'); 'off' = timedelta(0), no limit."""
    text = text.strip()
    if text.isdigit():
        if int(text) == 0:
            return timedelta(0)
        return timedelta(seconds=int(text))
    try:
        value = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"bad timeout {text!r}: use seconds (60), a duration with s, m, h (e.g. 60s, 2m) or 'off'"
        ) from None
    return timedelta(0) if value is None else value
