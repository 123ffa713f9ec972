"""The `tower` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import sys

import asyncpg

from tower import eventloop, logs
from tower.migrate import MigrationError
from tower.policies import PolicyError
from tower.privileges import MissingGrant, explain, role_of
from tower.settings import ConfigError

# Commands whose loop carries market data: uvloop where installed (tower/eventloop.py).
FAST_LOOP_COMMANDS = ("ingest", "bench")
# One line per command module; each has register(subparsers).
COMMAND_MODULES = [
    "tower.commands.database",
    "tower.commands.schema",
    "jobs.cli",
    "metabase.cli",
    "ingest.cli",
    "ingest.backfill_cli",
    "ingest.instruments_cli",
    "ingest.bench.cli",
]

USER_ERRORS = (ConfigError, MigrationError, PolicyError, MissingGrant, ConnectionError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tower", description="Perps ops control tower")
    parser.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING (default: $TOWER_LOG_LEVEL or INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.raw_argv = argv
    try:
        if args.log_level is not None:
            logs.setup(args.log_level, "--log-level")
        else:
            logs.setup(os.environ.get("TOWER_LOG_LEVEL", "INFO"), "TOWER_LOG_LEVEL")
        result = args.run(args)
        if inspect.isawaitable(result):
            result = eventloop.run(result) if args.command in FAST_LOOP_COMMANDS else asyncio.run(result)
        return int(result or 0)
    except Exception as exc:
        denied = _permission_error(exc)
        if denied is None and not isinstance(exc, USER_ERRORS):
            raise
        message = explain(denied, role_of(os.environ.get("TOWER_DSN"))) if denied else exc
        print(f"tower {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _permission_error(exc: BaseException) -> asyncpg.InsufficientPrivilegeError | None:
    """The permission error behind exc, when a command wrapped it (e.g. as a ConnectionError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.InsufficientPrivilegeError):
            return seen
        seen = seen.__cause__
    return None


if __name__ == "__main__":
    sys.exit(main())
