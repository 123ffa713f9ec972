"""SQL kept in jobs/sql/*.sql, loaded by name, column lists filled in from the one tuple of stored metrics.

A file names its lists with placeholders such as `{metric_columns}` (see `COLUMN_LISTS`); a literal
brace in a .sql file would have to be doubled. Identifiers only ever come from the tuples in
jobs/metric_names.py and jobs/rules.py, never from input.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jobs.metric_names import STORED_METRICS
from jobs.rules import SYMBOL_METRICS

SQL_DIR = Path(__file__).resolve().parent / "sql"
# upsert_score.sql binds bucket, venue, symbol, asset, score, top_component and components as
# $1..$7; the stored metrics follow from $8 on, in tuple order.
_FIRST_METRIC_PARAM = 8


def _column_lists() -> dict[str, str]:
    m = STORED_METRICS
    return {
        "metric_columns": ", ".join(m),
        "metric_params": ", ".join(f"${_FIRST_METRIC_PARAM + i}" for i in range(len(m))),
        "set_metrics": ", ".join(f"{c} = EXCLUDED.{c}" for c in m),
        "r_metrics": ", ".join(f"r.{c}" for c in m),
        "excluded_metrics": ", ".join(f"EXCLUDED.{c}" for c in m),
        "symbol_metrics": ", ".join(SYMBOL_METRICS),
    }


COLUMN_LISTS = _column_lists()


@cache
def sql(name: str) -> str:
    """The text of jobs/sql/<name>.sql with its column-list placeholders filled in."""
    return (SQL_DIR / f"{name}.sql").read_text().format_map(COLUMN_LISTS)
