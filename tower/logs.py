"""Logging for every `tower` command: one format on stderr, a level users choose, quiet HTTP clients."""

from __future__ import annotations

import logging
import sys

from tower.settings import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# One INFO line per HTTP request (Binance open interest polls, OKX metadata, Metabase calls) would be
# most of the log: these speak at WARNING unless the user asks for DEBUG.
CHATTY = ("httpx", "httpcore")


def setup(level: str, source: str) -> None:
    """`source` names where the level came from (--log-level or TOWER_LOG_LEVEL), for the error."""
    name = level.strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"{source}={level!r} is not a log level: use one of {', '.join(LEVELS)}")
    logging.basicConfig(level=name, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for logger in CHATTY:
        logging.getLogger(logger).setLevel(logging.DEBUG if name == "DEBUG" else logging.WARNING)
