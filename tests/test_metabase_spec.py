"""The dashboard files' rules, and Metabase's template-tag semantics as the report and tests apply them."""

from __future__ import annotations

from pathlib import Path

import pytest

from metabase import spec, template

KINDS = {"venue": template.TEXT, "symbol": template.TEXT, "hours": template.NUMBER}
SQL = (
    "SELECT 1 FROM t WHERE ts > now() - {{hours}} * INTERVAL '1 hour' [[AND venue = {{venue}}]] "
    "[[AND symbol = {{ symbol }} AND venue = {{venue}}]]"
)


def test_optional_clauses_drop_without_a_value_and_text_is_bound_not_inlined():
    sql, args = template.substitute(SQL, {"hours": 6, "venue": "x' OR '1'='1"}, KINDS)
    assert "AND venue = $1::text" in sql and "symbol" not in sql
    assert "now() - 6 * INTERVAL" in sql
    assert args == ["x' OR '1'='1"]
    sql, args = template.substitute(SQL, {"hours": "0.5", "venue": "binance", "symbol": "BTCUSDT"}, KINDS)
    assert "- 0.5 * INTERVAL" in sql and sql.count("$") == 3 and args == ["binance", "BTCUSDT", "binance"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "required but has no value"),
        ({"hours": "1; DROP TABLE t"}, "not a number"),
        ({"hours": float("nan")}, "not a finite number"),
    ],
)
def test_bad_parameter_values_are_refused(values, message):
    with pytest.raises(template.TemplateError, match=message):
        template.substitute(SQL, values, KINDS)


def test_the_shipped_dashboards_load():
    dashboards = spec.load_all()
    assert [d.name for d in dashboards] == ["Ops Overview", "Market Health", "Risk Monitor"]
    for d in dashboards:
        assert {"venue", "symbol", "hours"} <= {f.slug for f in d.filters}


def write(tmp_path: Path, toml: str, cards: dict[str, str]) -> Path:
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "demo.toml").write_text(toml)
    (tmp_path / "sql" / "demo").mkdir(parents=True)
    for name, sql in cards.items():
        (tmp_path / "sql" / "demo" / f"{name}.sql").write_text(sql)
    return tmp_path


HEAD = 'name = "Demo"\n[[filters]]\nslug = "venue"\nname = "Venue"\n'
CARD = '[[cards]]\nsql = "{sql}"\nname = "{name}"\ndisplay = "table"\nrow = {row}\ncol = 0\nsize_x = 12\nsize_y = 4\n'


@pytest.mark.parametrize(
    ("toml", "cards", "message"),
    [
        (HEAD + CARD.format(sql="a", name="A", row=0), {"a": "SELECT 1 WHERE x = {{symbol}}"}, "no such filter"),
        (HEAD + CARD.format(sql="a", name="A", row=0), {"a": "SELECT 1 WHERE venue = {{venue}}"}, "needs a default"),
        (
            HEAD + CARD.format(sql="a", name="A", row=0) + CARD.format(sql="b", name="B", row=3),
            {"a": "SELECT 1", "b": "SELECT 2"},
            "overlap",
        ),
        (HEAD + CARD.format(sql="a", name="A", row=0), {}, "no SQL file"),
        (
            HEAD + CARD.format(sql="a", name="A", row=0).replace('"table"', '"line"'),
            {"a": "SELECT 1"},
            "needs graph.dimensions",
        ),
    ],
)
def test_inconsistent_dashboard_files_are_refused_with_the_reason(tmp_path, toml, cards, message):
    root = write(tmp_path, toml, cards)
    with pytest.raises(spec.SpecError, match=message):
        spec.load_all(root / "dashboards", root / "sql")
