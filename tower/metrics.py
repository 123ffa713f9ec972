"""The Prometheus /metrics endpoint every long-running `tower` command can serve."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger("tower")


def serve(port: int | None) -> None:
    """Serve /metrics on all interfaces (the compose network needs more than loopback); None: don't."""
    if port:
        start_http_server(port)
        log.info("Prometheus metrics on :%d/metrics", port)
