"""The links a notification carries (the rule's runbook, the dashboard), shared by the sink formats."""

from __future__ import annotations


def links(payload: dict) -> list[tuple[str, str]]:
    """(label, url) for each link the payload has."""
    found = (("runbook", payload.get("runbook_url")), ("dashboard", payload.get("dashboard_url")))
    return [(label, url) for label, url in found if url]
