"""The `tower` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys

from tower.migrate import MigrationError
from tower.policies import PolicyError
from tower.settings import ConfigError

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

USER_ERRORS = (ConfigError, MigrationError, PolicyError, ConnectionError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tower", description="Perps ops control tower")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("TOWER_LOG_LEVEL", "INFO"),
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
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        result = args.run(args)
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        return int(result or 0)
    except USER_ERRORS as exc:
        print(f"tower {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
