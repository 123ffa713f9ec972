"""Prometheus metrics of the jobs service, served on TOWER_METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RUN_SECONDS = Histogram(
    "tower_jobs_run_duration_seconds",
    "Duration of each jobs-service run",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RUN_FAILURES = Counter("tower_jobs_run_failures_total", "Jobs-service runs that raised", ["job"])
ALERT_ATTEMPTS = Counter(
    "tower_alerts_sent_total",
    "Alert delivery attempts by sink, notification kind and outcome",
    ["sink", "kind", "status"],
)
