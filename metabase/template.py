"""Metabase's native-query parameters, applied the way Metabase applies them.

A card's SQL refers to filters as template tags: `{{venue}}`, and optional clauses `[[AND venue = {{venue}}]]`
that are dropped unless every tag inside them has a value. Text values are bound as query parameters;
number values are parsed and inlined as numeric literals (that is what Metabase does for number tags).
The HTML report and the tests run card SQL through this, so they see what Metabase would run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)

TEXT, NUMBER = "text", "number"


class TemplateError(ValueError):
    """The SQL's tags or the given values do not fit together; the message names the tag."""


def tags_in(sql: str) -> list[str]:
    """Every tag the SQL uses, in order of first appearance."""
    seen: dict[str, None] = {}
    for name in TAG.findall(sql):
        seen.setdefault(name, None)
    return list(seen)


def required_tags(sql: str) -> list[str]:
    """Tags used outside optional clauses: the query cannot run without a value (or default) for them."""
    return tags_in(OPTIONAL.sub("", sql))


def substitute(sql: str, values: Mapping[str, object], kinds: Mapping[str, str]) -> tuple[str, list[object]]:
    """(asyncpg SQL with $n placeholders, its arguments) for the given tag values.

    `values` maps tag name to value; None or "" means "no value" (optional clauses using it are dropped).
    `kinds` maps tag name to TEXT or NUMBER.
    """
    for name in tags_in(sql):
        if name not in kinds:
            raise TemplateError(f"template tag {{{{{name}}}}} has no declared type")
    present = {k: v for k, v in values.items() if v is not None and v != ""}

    def keep_clause(match: re.Match) -> str:
        body = match.group(1)
        return body if all(name in present for name in TAG.findall(body)) else ""

    text = OPTIONAL.sub(keep_clause, sql)
    args: list[object] = []

    def bind(match: re.Match) -> str:
        name = match.group(1)
        if name not in present:
            raise TemplateError(f"template tag {{{{{name}}}}} is required but has no value")
        value = present[name]
        if kinds[name] == NUMBER:
            return number_literal(name, value)
        args.append(str(value))
        return f"${len(args)}::text"

    return TAG.sub(bind, text), args


def number_literal(name: str, value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TemplateError(f"{name}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TemplateError(f"{name}: {value!r} is not a finite number")
    return str(int(number)) if number.is_integer() else repr(number)
