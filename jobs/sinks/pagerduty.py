"""PagerDuty Events API v2: trigger, acknowledge and resolve, one alert per risk event.

The dedup_key is stable per event (`tower-<event id>`), so the firing, every escalation or reminder
(re-triggers update the same alert), the acknowledgement and the resolution all land on one alert.
PagerDuty groups alerts into incidents itself, so each event is its own request (GROUPS = False).
"""

from __future__ import annotations

from jobs.sinks.links import links as payload_links

GROUPS = False
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
ACTIONS = {
    "firing": "trigger",
    "escalated": "trigger",
    "reminder": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
# PagerDuty's severities are critical, error, warning, info.
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def dedup_key(event_id: int) -> str:
    return f"tower-{event_id}"


def render(batch: list[dict], secret: str | None = None) -> list[dict]:
    return [_event(p, secret or "") for p in batch]


def _event(p: dict, routing_key: str) -> dict:
    e = p["event"]
    body: dict = {"routing_key": routing_key, "event_action": ACTIONS[p["kind"]], "dedup_key": dedup_key(e["id"])}
    if body["event_action"] != "trigger":
        return body
    body["payload"] = {
        "summary": e["message"][:1024],
        "source": e["venue"] if e["symbol"] == "*" else f"{e['venue']} {e['symbol']}",
        "severity": SEVERITY[e["severity"]],
        "timestamp": p["data_time"],
        "component": e["rule"],
        "group": e["venue"],
        "class": e["metric"],
        "custom_details": e,
    }
    links = [{"href": url, "text": label} for label, url in payload_links(p)]
    if links:
        body["links"] = links
    return body
