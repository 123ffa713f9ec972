"""SQL kept in jobs/sql/*.sql, loaded by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def sql(name: str) -> str:
    """The text of jobs/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()
