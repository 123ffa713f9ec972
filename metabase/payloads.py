"""Metabase API bodies built from the dashboard files (pure functions: no I/O)."""

from __future__ import annotations

import hashlib
import json

from metabase import template
from metabase.spec import Card, Dashboard, Filter

MANAGED_NOTE = "Managed by `tower metabase provision` from metabase/ in the repo; edits here are overwritten."
FINGERPRINT_PREFIX = "tower-fingerprint:"


def variable_target(tag: str) -> list:
    return ["variable", ["template-tag", tag]]


def template_tags(d: Dashboard, card: Card) -> dict:
    required = set(template.required_tags(card.sql))
    tags = {}
    for name in card.tags:
        f = d.filter(name)
        tag = {
            "id": d.tag_id(card, name),
            "name": name,
            "display-name": f.name,
            "type": f.kind,
            "required": name in required,
        }
        if f.default is not None:
            tag["default"] = str(f.default)
        tags[name] = tag
    return tags


def card_parameters(d: Dashboard, card: Card) -> list[dict]:
    params = []
    for name in card.tags:
        f = d.filter(name)
        p = {
            "id": d.tag_id(card, name),
            "name": f.name,
            "slug": name,
            "type": "category" if f.kind == template.TEXT else "number/=",
            "target": variable_target(name),
        }
        if f.default is not None:
            p["default"] = f.default
        params.append(p)
    return params


def card_payload(d: Dashboard, card: Card, database_id: int, collection_id: int) -> dict:
    body = {
        "name": card.name,
        "type": "question",
        "display": card.display,
        "collection_id": collection_id,
        "dataset_query": {
            "type": "native",
            "database": database_id,
            "native": {"query": card.sql, "template-tags": template_tags(d, card)},
        },
        "parameters": card_parameters(d, card),
        "visualization_settings": card.visualization_settings,
    }
    # Metabase answers with MBQL 5 (0.57+), so the saved query cannot be diffed against what we send;
    # a hash of what we send, kept in the description, tells whether the card is up to date.
    body["description"] = "\n\n".join(
        x for x in (card.description, MANAGED_NOTE, FINGERPRINT_PREFIX + fingerprint(body)) if x
    )
    return body


def fingerprint(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def fingerprint_of(description: str | None) -> str | None:
    for line in (description or "").splitlines():
        if line.startswith(FINGERPRINT_PREFIX):
            return line[len(FINGERPRINT_PREFIX) :].strip()
    return None


def dashboard_parameter(d: Dashboard, f: Filter) -> dict:
    # Single value: a text or number template tag takes one value, not a list.
    p = {
        "id": d.parameter_id(f.slug),
        "name": f.name,
        "slug": f.slug,
        "type": f.parameter_type,
        "sectionId": f.section_id,
        "isMultiSelect": False,
    }
    if f.default is not None:
        p["default"] = [f.default]
    return p


def dashboard_parameters(d: Dashboard) -> list[dict]:
    return [dashboard_parameter(d, f) for f in d.filters]


def dashcards(d: Dashboard, card_ids: dict[str, int], existing_ids: dict[int, int]) -> list[dict]:
    """The full desired dashcards list for PUT /api/dashboard/:id.

    card_ids: card key -> Metabase card id. existing_ids: Metabase card id -> id of the dashcard already
    showing it (kept, so the update edits in place); other dashcards get negative ids (= create).
    Every parameter mapping carries card_id: without it Metabase ignores the filter (metabase#77693).
    """
    out = []
    for n, card in enumerate(d.cards, start=1):
        card_id = card_ids[card.key]
        out.append(
            {
                "id": existing_ids.get(card_id, -n),
                "card_id": card_id,
                "row": card.row,
                "col": card.col,
                "size_x": card.size_x,
                "size_y": card.size_y,
                "parameter_mappings": [
                    {"parameter_id": d.parameter_id(tag), "card_id": card_id, "target": variable_target(tag)}
                    for tag in card.tags
                ],
                "visualization_settings": {},
                "series": [],
            }
        )
    return out


def dashcard_shape(dashcard: dict) -> tuple:
    """What makes two dashcards the same for us: card, place, size and filter wiring (not ids)."""
    mappings = sorted(
        (m.get("parameter_id"), m.get("card_id"), json.dumps(m.get("target")))
        for m in dashcard.get("parameter_mappings") or []
    )
    return (
        dashcard.get("card_id"),
        dashcard.get("row"),
        dashcard.get("col"),
        dashcard.get("size_x"),
        dashcard.get("size_y"),
        tuple(mappings),
    )


def parameter_shape(p: dict) -> tuple:
    return (p.get("id"), p.get("name"), p.get("slug"), p.get("type"), json.dumps(p.get("default")))
