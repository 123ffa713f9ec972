"""Alert sinks, one module per sink type, each owning its payload format.

A sink module has `GROUPS` (whether one HTTP request may carry a group of notifications) and
`render(batch, secret)`: the JSON bodies to POST for a batch of queued payloads (jobs/evaluate.py's
`payload`), all of one kind and notification group.
"""

from __future__ import annotations

from types import ModuleType

from jobs.sinks import pagerduty, slack, webhook

SINKS: dict[str, ModuleType] = {"webhook": webhook, "slack": slack, "pagerduty": pagerduty}
