"""The dashboards as files: `dashboards/<key>.toml` describes one dashboard, `sql/<key>/<card>.sql` holds
each card's native SQL. load_all() reads and checks them; everything else works from these dataclasses."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from metabase import template

ROOT = Path(__file__).resolve().parent
DASHBOARD_DIR = ROOT / "dashboards"
SQL_DIR = ROOT / "sql"
GRID_WIDTH = 24  # Metabase dashboards are 24 columns wide

# Metabase `display` values this project renders (in Metabase and in the HTML report).
DISPLAYS = {"table", "scalar", "line", "area", "bar"}
CHART_DISPLAYS = {"line", "area", "bar"}
# Stable namespace for the ids of dashboard parameters and template tags, so re-provisioning
# produces the same ids and the filter wiring survives.
_ID_NAMESPACE = uuid.UUID("9a4f3c1e-5b7d-4e2a-8c61-0d3f2b9e7a55")


class SpecError(ValueError):
    """A dashboard file or card is inconsistent; the message names the file and the problem."""


@dataclass(frozen=True)
class Filter:
    slug: str  # also the template tag name in card SQL
    name: str
    kind: str  # template.TEXT or template.NUMBER
    default: str | float | None = None

    @property
    def parameter_type(self) -> str:
        # Dashboard parameter types compatible with text / number template tags.
        return "string/=" if self.kind == template.TEXT else "number/="

    @property
    def section_id(self) -> str:
        return "string" if self.kind == template.TEXT else "number"


@dataclass(frozen=True)
class Card:
    key: str  # file stem, e.g. feed_freshness
    name: str
    description: str
    display: str
    sql: str
    row: int
    col: int
    size_x: int
    size_y: int
    visualization_settings: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def tags(self) -> list[str]:
        return template.tags_in(self.sql)

    def required_columns(self) -> list[str]:
        """Result columns the visualization settings name: the SQL must return all of them."""
        vs = self.visualization_settings
        names: list[str] = []
        names += vs.get("graph.dimensions", [])
        names += vs.get("graph.metrics", [])
        names += [c["name"] for c in vs.get("table.columns", []) if c.get("enabled", True)]
        if "scalar.field" in vs:
            names.append(vs["scalar.field"])
        for rule in vs.get("table.column_formatting", []):
            names += rule.get("columns", [])
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Dashboard:
    key: str
    name: str
    description: str
    filters: tuple[Filter, ...]
    cards: tuple[Card, ...]
    position: int = 100  # order in reports and in provisioning output

    def filter(self, slug: str) -> Filter:
        for f in self.filters:
            if f.slug == slug:
                return f
        raise KeyError(slug)

    def parameter_id(self, slug: str) -> str:
        return uuid.uuid5(_ID_NAMESPACE, f"{self.key}/{slug}").hex[:8]

    def tag_id(self, card: Card, tag: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.key}/{card.key}/{tag}"))

    def tag_kinds(self) -> dict[str, str]:
        return {f.slug: f.kind for f in self.filters}

    def defaults(self) -> dict[str, object]:
        return {f.slug: f.default for f in self.filters if f.default is not None}


def load_all(dashboard_dir: Path = DASHBOARD_DIR, sql_dir: Path = SQL_DIR) -> list[Dashboard]:
    dashboards = sorted(
        (load(path, sql_dir) for path in dashboard_dir.glob("*.toml")), key=lambda d: (d.position, d.key)
    )
    if not dashboards:
        raise SpecError(f"no dashboards in {dashboard_dir}")
    seen: dict[str, str] = {}
    for d in dashboards:
        for c in d.cards:
            # Cards are upserted by name inside one collection, so names must be unique across dashboards.
            if c.name in seen:
                raise SpecError(f"card name {c.name!r} is used by {seen[c.name]} and {d.key}/{c.key}")
            seen[c.name] = f"{d.key}/{c.key}"
    if len({d.name for d in dashboards}) != len(dashboards):
        raise SpecError("two dashboards share a name")
    return dashboards


def load(path: Path, sql_dir: Path = SQL_DIR) -> Dashboard:
    where = path.name
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: {exc}") from None
    filters = tuple(_filter(where, f) for f in raw.get("filters", []))
    if len({f.slug for f in filters}) != len(filters):
        raise SpecError(f"{where}: two filters share a slug")
    cards = tuple(_card(where, path.stem, c, sql_dir) for c in raw.get("cards", []))
    dashboard = Dashboard(
        key=path.stem,
        name=_str(where, raw, "name"),
        description=raw.get("description", ""),
        filters=filters,
        cards=cards,
        position=int(raw.get("position", 100)),
    )
    _check_tags(where, dashboard)
    _check_layout(where, dashboard)
    return dashboard


def _str(where: str, raw: dict, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: `{key}` must be a non-empty string")
    return value


def _filter(where: str, raw: dict) -> Filter:
    kind = raw.get("kind", template.TEXT)
    if kind not in (template.TEXT, template.NUMBER):
        raise SpecError(f"{where}: filter {raw.get('slug')!r}: kind must be 'text' or 'number'")
    default = raw.get("default")
    if default is not None and kind == template.NUMBER:
        template.number_literal(raw.get("slug", "?"), default)
    return Filter(slug=_str(where, raw, "slug"), name=_str(where, raw, "name"), kind=kind, default=default)


def _card(where: str, dashboard_key: str, raw: dict, sql_dir: Path) -> Card:
    key = _str(where, raw, "sql")
    sql_path = sql_dir / dashboard_key / f"{key}.sql"
    if not sql_path.is_file():
        raise SpecError(f"{where}: card {key!r}: no SQL file {sql_path}")
    display = raw.get("display", "table")
    if display not in DISPLAYS:
        raise SpecError(f"{where}: card {key!r}: display {display!r} is not one of {sorted(DISPLAYS)}")
    try:
        row, col, size_x, size_y = (int(raw[k]) for k in ("row", "col", "size_x", "size_y"))
    except (KeyError, TypeError, ValueError):
        raise SpecError(f"{where}: card {key!r}: row, col, size_x and size_y must be integers") from None
    vs = raw.get("visualization_settings", {})
    if display in CHART_DISPLAYS and not (vs.get("graph.dimensions") and vs.get("graph.metrics")):
        raise SpecError(f"{where}: card {key!r}: a {display} chart needs graph.dimensions and graph.metrics")
    return Card(
        key=key,
        name=_str(where, raw, "name"),
        description=raw.get("description", ""),
        display=display,
        sql=sql_path.read_text(),
        row=row,
        col=col,
        size_x=size_x,
        size_y=size_y,
        visualization_settings=vs,
    )


def _check_tags(where: str, d: Dashboard) -> None:
    slugs = {f.slug for f in d.filters}
    for c in d.cards:
        for tag in c.tags:
            if tag not in slugs:
                raise SpecError(f"{where}: card {c.key!r} uses {{{{{tag}}}}} but the dashboard has no such filter")
        for tag in template.required_tags(c.sql):
            if d.filter(tag).default is None:
                raise SpecError(
                    f"{where}: card {c.key!r} uses {{{{{tag}}}}} outside [[...]], so its filter needs a default"
                )


def _check_layout(where: str, d: Dashboard) -> None:
    taken: dict[tuple[int, int], str] = {}
    for c in d.cards:
        if c.col < 0 or c.row < 0 or c.size_x < 1 or c.size_y < 1 or c.col + c.size_x > GRID_WIDTH:
            raise SpecError(f"{where}: card {c.key!r} does not fit the {GRID_WIDTH}-column grid")
        for r in range(c.row, c.row + c.size_y):
            for x in range(c.col, c.col + c.size_x):
                if (r, x) in taken:
                    raise SpecError(f"{where}: cards {taken[(r, x)]!r} and {c.key!r} overlap")
                taken[(r, x)] = c.key
