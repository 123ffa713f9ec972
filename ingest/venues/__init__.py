"""Venue adapters, one module each; REGISTRY maps the CLI's venue name to its adapter."""

from __future__ import annotations

from ingest.venues.base import Venue
from ingest.venues.binance import Binance
from ingest.venues.hyperliquid import Hyperliquid

REGISTRY: dict[str, type[Venue]] = {
    "binance": Binance,
    "hyperliquid": Hyperliquid,
}
