"""`tower report --html FILE`: the dashboards' cards (same SQL, same filters) as one self-contained HTML page
for incident write-ups and for checking the dashboards without Metabase. No scripts, no external resources."""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape

import asyncpg

from metabase import METABASE_VERSION
from metabase.charts import fmt_number, render_chart
from metabase.runner import CardResult, effective_values, run_card
from metabase.spec import CHART_DISPLAYS, Card, Dashboard
from metabase.template import TemplateError

log = logging.getLogger("tower.report")
ROW_HEIGHT = 52  # px per Metabase grid row
COL_WIDTH = 56  # px per grid column, for chart proportions
MAX_TABLE_ROWS = 200


@dataclass
class Rendered:
    card: Card
    result: CardResult | None
    error: str | None


async def build_report(
    conn: asyncpg.Connection, dashboards: list[Dashboard], values: Mapping[str, object]
) -> tuple[str, int]:
    """Runs every card; returns the page and how many cards failed (they show their error on the page)."""
    meta = await _meta(conn)
    sections, failed = [], 0
    for d in dashboards:
        used = {k: v for k, v in values.items() if v is not None and any(f.slug == k for f in d.filters)}
        rendered = []
        for card in d.cards:
            try:
                rendered.append(Rendered(card, await run_card(conn, d, card, used), None))
            except (asyncpg.PostgresError, TemplateError) as exc:
                failed += 1
                log.warning("%s / %s failed: %s", d.name, card.name, exc)
                rendered.append(Rendered(card, None, f"{exc.__class__.__name__}: {exc}"))
        sections.append(_section(d, effective_values(d, used), rendered))
    return _page(meta, sections), failed


async def _meta(conn: asyncpg.Connection) -> dict[str, str]:
    row = await conn.fetchrow(
        "SELECT now() AS now, current_database() AS db, current_user AS usr, "
        "current_setting('timescaledb.license', true) AS license, "
        "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS tsdb"
    )
    return {
        "now": row["now"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "db": row["db"],
        "user": row["usr"],
        "license": row["license"] or "-",
        "tsdb": row["tsdb"] or "-",
    }


def _section(d: Dashboard, values: Mapping[str, object], cards: list[Rendered]) -> str:
    chips = "".join(
        f'<span class="chip">{escape(f.name)}: <b>{escape(_value(values.get(f.slug)))}</b></span>' for f in d.filters
    )
    body = "".join(_card(c) for c in cards)
    return (
        f'<section><h2>{escape(d.name)}</h2><p class="desc">{escape(d.description)}</p>'
        f'<div class="filters">{chips}</div><div class="grid">{body}</div></section>'
    )


def _value(v: object) -> str:
    return "all" if v is None or v == "" else str(v)


def _card(r: Rendered) -> str:
    c = r.card
    style = f"grid-column:{c.col + 1} / span {c.size_x};grid-row:{c.row + 1} / span {c.size_y}"
    if r.error is not None:
        content = f'<div class="error">{escape(r.error)}</div>'
    elif c.display in CHART_DISPLAYS:
        content = render_chart(
            c.display,
            r.result.columns,
            r.result.rows,
            c.visualization_settings,
            c.size_x * COL_WIDTH,
            max(c.size_y * ROW_HEIGHT - 70, 120),
        )
    elif c.display == "scalar":
        content = _scalar(c, r.result)
    else:
        content = _table(c, r.result)
    desc = f'<p class="card-desc">{escape(c.description)}</p>' if c.description else ""
    return (
        f'<article class="card" style="{style}"><h3>{escape(c.name)}</h3>{desc}{content}'
        f"<details><summary>SQL</summary><pre>{escape(c.sql)}</pre></details></article>"
    )


def _scalar(c: Card, result: CardResult) -> str:
    if not result.rows:
        return '<div class="empty">No results</div>'
    name = c.visualization_settings.get("scalar.field", result.columns[0])
    return f'<div class="scalar">{escape(_cell(result.column(name)[0]))}</div>'


_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "=": operator.eq, "!=": operator.ne}


def _matches(rule: dict, value: object) -> bool:
    op = rule.get("operator")
    if op == "is-null":
        return value is None
    if op == "not-null":
        return value is not None
    if value is None or op not in _OPS:
        return False
    try:
        return bool(_OPS[op](value, rule.get("value")))
    except TypeError:
        return False


def _table(c: Card, result: CardResult) -> str:
    if not result.rows:
        return '<div class="empty">No results</div>'
    wanted = [col["name"] for col in c.visualization_settings.get("table.columns", []) if col.get("enabled", True)]
    columns = [n for n in wanted if n in result.columns] or result.columns
    rules = c.visualization_settings.get("table.column_formatting", [])
    head = "".join(f"<th>{escape(n)}</th>" for n in columns)
    lines = []
    for row in result.rows[:MAX_TABLE_ROWS]:
        record = dict(zip(result.columns, row, strict=True))
        row_color, cells = None, []
        for n in columns:
            color = None
            for rule in rules:
                if n in rule.get("columns", []) and _matches(rule, record[n]):
                    color = rule.get("color")
                    if rule.get("highlight_row") and row_color is None:
                        row_color = color
                    break
            numeric = isinstance(record[n], int | float | Decimal) and not isinstance(record[n], bool)
            attrs = ' class="num"' if numeric else ""
            if color:
                attrs += f' style="background:{escape(color)}66"'
            cells.append(f"<td{attrs}>{escape(_cell(record[n]))}</td>")
        style = f' style="background:{escape(row_color)}22"' if row_color else ""
        lines.append(f"<tr{style}>{''.join(cells)}</tr>")
    more = len(result.rows) - MAX_TABLE_ROWS
    note = f'<p class="more">{more} more rows not shown</p>' if more > 0 else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    return f'<div class="table">{table}</div>{note}'


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float):
        return fmt_number(v) if abs(v) >= 1e4 else f"{v:,.6g}"
    return str(v)


def _page(meta: dict[str, str], sections: list[str]) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Perps Ops Control Tower report, {escape(meta["now"])}</title>
<style>{CSS}</style></head>
<body>
<header><h1>Perps Ops Control Tower</h1>
<p>Report generated {escape(meta["now"])} from database <b>{escape(meta["db"])}</b> as {escape(meta["user"])}
(TimescaleDB {escape(meta["tsdb"])}, license {escape(meta["license"])}). Same SQL as the Metabase
{escape(METABASE_VERSION)} dashboards (metabase/sql/); times in UTC.</p></header>
{"".join(sections)}
</body></html>
"""


CSS = (
    """
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px; background: #f9fbfc; color: #2e353b;
       font: 13px/1.4 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 12px; color: #696e7b; }
section { margin: 18px 0 28px; }
section h2 { margin: 0; font-size: 18px; }
.desc { margin: 2px 0 6px; color: #696e7b; }
.filters { margin-bottom: 10px; }
.chip { display: inline-block; margin-right: 6px; padding: 2px 8px; border: 1px solid #dcdfe0; border-radius: 12px;
        background: #fff; color: #4c5773; }
.grid { display: grid; grid-template-columns: repeat(24, minmax(0, 1fr)); grid-auto-rows: minmax("""
    + str(ROW_HEIGHT)
    + """px, auto); gap: 10px; }
.card { background: #fff; border: 1px solid #e6e8ea; border-radius: 8px; padding: 10px 12px; overflow: hidden;
        display: flex; flex-direction: column; min-width: 0; }
.card h3 { margin: 0 0 2px; font-size: 14px; }
.card-desc { margin: 0 0 6px; color: #949aab; font-size: 11px; }
.table { overflow: auto; flex: 1; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th { text-align: left; color: #696e7b; font-weight: 600; border-bottom: 1px solid #e6e8ea; padding: 3px 6px;
     overflow-wrap: anywhere; }
td { border-bottom: 1px solid #f0f0f0; padding: 3px 6px; overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scalar { font-size: 40px; font-weight: 700; padding: 12px 0; }
.empty { color: #949aab; padding: 24px 0; text-align: center; }
.error { color: #a33; background: #fdeeee; padding: 8px; border-radius: 4px; white-space: pre-wrap; }
.more { color: #949aab; margin: 4px 0 0; font-size: 11px; }
.legend { font-size: 11px; color: #4c5773; margin-bottom: 2px; }
.legend .key { margin-right: 10px; white-space: nowrap; }
.legend i { display: inline-block; width: 9px; height: 9px; border-radius: 2px; margin-right: 4px; }
svg { display: block; }
svg .grid { stroke: #eef0f1; stroke-width: 1; }
svg .axis { stroke: #c9ced3; stroke-width: 1; }
svg .tick { fill: #949aab; font-size: 10px; }
svg .axis-title { fill: #696e7b; font-size: 10px; }
details { margin-top: auto; padding-top: 6px; color: #949aab; font-size: 11px; }
details pre { white-space: pre-wrap; color: #4c5773; background: #f5f7f8; padding: 6px; border-radius: 4px; }
@media print { details { display: none; } .card { break-inside: avoid; } }
"""
)
