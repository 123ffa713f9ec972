"""Generic JSON webhook: {"kind", "data_time", "text", "event", "events", "group", "runbook_url", "dashboard_url"}.

`event` is the first event of the group (what a single notification always carried), `events` all of them.
"""

from __future__ import annotations

GROUPS = True


def render(batch: list[dict], secret: str | None = None) -> list[dict]:
    first = batch[0]
    body = dict(first)
    body["events"] = [p["event"] for p in batch]
    body["text"] = "\n".join(p["text"] for p in batch) if len(batch) > 1 else first["text"]
    body["group"] = len(batch)
    return [body]
