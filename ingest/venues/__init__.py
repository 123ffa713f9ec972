"""Venue adapters, one module each; REGISTRY maps the CLI's venue name to its adapter.

Adding a venue is its module and one line here: settings, the CLI and the runtime read what differs
between venues (heartbeat, idle limit, rotation, REST, example symbols) from the adapter class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.venues.base import Venue
from ingest.venues.binance import Binance
from ingest.venues.bybit import Bybit
from ingest.venues.hyperliquid import Hyperliquid
from ingest.venues.okx import Okx

if TYPE_CHECKING:
    from ingest.settings import IngestSettings, VenueConfig

REGISTRY: dict[str, type[Venue]] = {
    "binance": Binance,
    "hyperliquid": Hyperliquid,
    "bybit": Bybit,
    "okx": Okx,
}


def make_venue(config: VenueConfig, settings: IngestSettings) -> Venue:
    """The adapter a validated venue config describes, with the heartbeat the settings ask for."""
    cls = REGISTRY[config.name]
    extra: dict[str, object] = {"derivs": config.derivs, "rest_url": config.rest_url}
    ping_s = settings.ping_s(cls)
    if ping_s is not None:
        extra["heartbeat_s"] = ping_s
    venue = cls(config.symbols, ws_url=config.ws_url, testnet=config.testnet, **extra)
    if config.depth:
        venue.configure_depth(settings.depth_config())
    return venue
