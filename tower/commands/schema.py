"""`tower schema docs`: print the data dictionary of schema `ops` (Markdown) from the database's catalog."""

from __future__ import annotations

import argparse
import sys

from tower import schema_docs
from tower.db import connect


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="describe the ops schema")
    ssub = p.add_subparsers(dest="schema_command", required=True)
    docs = ssub.add_parser(
        "docs", help="print the data dictionary (Markdown): `tower schema docs > docs/data-dictionary.md`"
    )
    docs.set_defaults(run=run_docs)


async def run_docs(args: argparse.Namespace) -> int:
    conn = await connect()
    try:
        schema_comment, relations = await schema_docs.read(conn)
    finally:
        await conn.close()
    sys.stdout.write(schema_docs.render(schema_comment, relations))
    return 0
