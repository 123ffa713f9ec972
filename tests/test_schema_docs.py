"""The ops schema describes itself: every relation and column has a COMMENT (what psql's `\\d+` and
Metabase's data reference show), and docs/data-dictionary.md is what `tower schema docs` prints for a
freshly migrated database, under either license."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tower.cli import main
from tower.migrate import migrate
from tower.schema_docs import REGENERATE

DICTIONARY = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"

# Tables, partitioned tables, views and materialized views in ops (TimescaleDB's own relations, chunks
# and materialization hypertables live in other schemas), and each of their live columns.
_UNDESCRIBED = """
WITH rel AS (
    SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'ops' AND c.relkind IN ('r', 'p', 'v', 'm')
)
SELECT name AS what FROM rel WHERE coalesce(obj_description(oid, 'pg_class'), '') = ''
UNION ALL
SELECT rel.name || '.' || a.attname
FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE coalesce(col_description(rel.oid, a.attnum), '') = ''
ORDER BY 1"""


async def undescribed(conn: asyncpg.Connection, of: tuple[str, ...] = ("ops.",)) -> list[str]:
    """Undescribed relations and columns whose names start with one of `of`."""
    return [r["what"] for r in await conn.fetch(_UNDESCRIBED) if r["what"].startswith(of)]


async def test_every_relation_and_column_in_ops_has_a_comment(conn):
    missing = await undescribed(conn)
    assert not missing, (
        f"{len(missing)} relations/columns in ops have no COMMENT ON (unit and meaning: bps, quote-currency "
        "notional, venue vs receive time, what NULL means). Add them in the migration or db/views file that "
        "creates them (continuous aggregates: a numbered migration after the db/caggs file): " + ", ".join(missing)
    )


async def test_the_check_names_an_undescribed_table_and_column(conn):
    await conn.execute("CREATE TABLE ops.scratch (a int, b int)")
    await conn.execute("COMMENT ON COLUMN ops.scratch.a IS 'described'")
    assert await undescribed(conn, ("ops.scratch",)) == ["ops.scratch", "ops.scratch.b"]
    await conn.execute("COMMENT ON TABLE ops.scratch IS 'a table'")
    await conn.execute("ALTER TABLE ops.scratch ADD COLUMN c text")
    await conn.execute("COMMENT ON COLUMN ops.scratch.b IS 'described'")
    assert await undescribed(conn, ("ops.scratch",)) == ["ops.scratch.c"]


async def test_view_comments_survive_migrate_recreating_the_views(conn):
    views = ("ops.features_1m", "ops.features_1h", "ops.derivs_features_1m", "ops.completeness_daily")
    await conn.execute(f"DROP VIEW {', '.join(views)}")
    report = await migrate(conn, log=lambda _: None)
    assert set(report.views) == set(views)
    assert await undescribed(conn, views) == []
    assert "bps" in await conn.fetchval("SELECT col_description('ops.features_1h'::regclass, 6)")


def test_data_dictionary_is_current(db_dsn, monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    assert main(["schema", "docs"]) == 0
    printed = capsys.readouterr().out
    assert printed == DICTIONARY.read_text(), (
        f"docs/data-dictionary.md is not what the catalog says; regenerate it: {REGENERATE}"
    )


def test_data_dictionary_names_kinds_for_both_licenses_and_policies():
    text = DICTIONARY.read_text()
    assert "| [`ops.book_1m`](#opsbook_1m) | continuous aggregate (TSL) / view (Apache) |" in text
    assert "| [`ops.features_1m`](#opsfeatures_1m) | view |" in text
    assert "| [`ops.raw_trades`](#opsraw_trades) | hypertable on ts, 1h chunks |" in text
    assert "Policies: retention 30d; compressed after 2h (TSL)." in text
    assert "| `spread_bps_mean` | double precision | mean spread over the updates, bps" in text
