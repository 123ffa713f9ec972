"""Venue adapters, one module each; REGISTRY maps the CLI's venue name to its adapter."""

from __future__ import annotations

from ingest.venues.base import Venue
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx

REGISTRY: dict[str, type[Venue]] = {
    "binance": Binance,
    "hyperliquid": Hyperliquid,
    "bybit": Bybit,
    "okx": Okx,
}
