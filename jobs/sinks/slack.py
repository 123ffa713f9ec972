"""Slack-compatible incoming webhook: {"text": ...}, one line per event of the group, then the links."""

from __future__ import annotations

from jobs.sinks.links import links as payload_links

GROUPS = True


def render(batch: list[dict], secret: str | None = None) -> list[dict]:
    first = batch[0]
    lines = [p["text"] for p in batch]
    if len(batch) > 1:
        e = first["event"]
        lines.insert(0, f"{len(batch)} x {e['rule']} {first['kind']} on {e['venue']}:")
    links = [f"<{url}|{label}>" for label, url in payload_links(first)]
    if links:
        lines.append(" | ".join(links))
    return [{"text": "\n".join(lines)}]
