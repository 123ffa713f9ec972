"""What the venues list and what ops.instruments holds: the symbol check at `tower ingest` start,
`--symbols all`, and `tower instruments sync`. Each venue's list format lives in its adapter
(`Venue.listed_instruments`); nothing venue-specific here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from ingest.venues.base import ListedInstrument, Venue
from tower.settings import ConfigError

log = logging.getLogger("ingest")

SQL_DIR = Path(__file__).parent / "sql"
SYNC_LISTED_SQL = (SQL_DIR / "sync_listed.sql").read_text()
SYNC_RETIRE_SQL = (SQL_DIR / "sync_retire.sql").read_text()
REGISTER_SQL = (SQL_DIR / "register.sql").read_text()
ALL = "all"  # `--symbols all`: every perpetual the venue lists as trading


class ListingUnavailable(Exception):
    """The venue's instrument list could not be read; the message says from where and why."""


async def fetch_listing(venue: Venue, timeout_s: float = 10.0) -> list[ListedInstrument]:
    if venue.rest_root is None:
        raise ListingUnavailable(f"{venue.name}: no REST root ({rest_off_notice(venue)})")
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            return await venue.listed_instruments(client)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        raise ListingUnavailable(
            f"cannot read {venue.name}'s instrument list from {venue.rest_root} ({type(exc).__name__}: {exc})"
        ) from None


def rest_off_notice(venue: Venue) -> str:
    return (
        f"{venue.name}: --ws-url given without --rest-url, so no REST requests go to the venue: "
        f"{venue.rest_uses} off; give --rest-url with the venue's REST root to turn them on"
    )


def wants_all(symbols: list[str]) -> bool:
    return [s.lower() for s in symbols] == [ALL]


async def all_symbols(venue: Venue) -> list[str]:
    """Every perpetual the venue lists as trading, for `--symbols all`; a clear error when there is no list."""
    try:
        listed = await fetch_listing(venue)
    except ListingUnavailable as exc:
        raise ConfigError(f"--symbols all needs the venue's instrument list: {exc}") from None
    symbols = [i.symbol for i in listed if i.trading]
    if not symbols:
        raise ConfigError(f"{venue.name}'s instrument list at {venue.rest_root} has no perpetual open for trading")
    log.info("%s: --symbols all: %d perpetuals listed as trading", venue.name, len(symbols))
    return symbols


async def check_symbols(venues: list[Venue]) -> None:
    """Refuses symbols a venue does not list (a typo must not become an instrument that pages someone); a
    venue whose list cannot be read is named in a warning and the run goes on unchecked (offline sites:
    nothing becomes active before its data arrives anyway)."""
    for venue in venues:
        if venue.rest_root is None:
            log.warning("%s", rest_off_notice(venue))
            continue
        try:
            listed = {i.symbol: i for i in await fetch_listing(venue)}
        except ListingUnavailable as exc:
            log.warning("%s; going on without checking the symbols", exc)
            continue
        unknown = [s for s in venue.symbols if s not in listed]
        if unknown:
            raise ConfigError(
                f"{venue.name}: unknown symbol{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not in the "
                f"venue's instrument list ({venue.rest_root}); check the spelling "
                f"(e.g. {', '.join(venue.example_symbols)})"
            )
        closed = [f"{s} ({listed[s].status})" for s in venue.symbols if not listed[s].trading]
        if closed:
            log.warning("%s: listed but not open for trading: %s", venue.name, ", ".join(closed))


@dataclass(frozen=True)
class SyncResult:
    listed: int
    trading: int
    deactivated: list[str]  # were active, now delisted, not trading or no longer listed


async def sync_instruments(conn: asyncpg.Connection, venue: str, listed: list[ListedInstrument]) -> SyncResult:
    """The venue's list into ops.instruments (asset, quote, contract size, tick size, status); what is
    delisted, not trading or no longer listed is deactivated. Listing alone activates nothing."""
    trading = [i.symbol for i in listed if i.trading]
    async with conn.transaction():
        await conn.execute(
            SYNC_LISTED_SQL,
            venue,
            [i.symbol for i in listed],
            [i.asset for i in listed],
            [i.quote for i in listed],
            [i.contract_size for i in listed],
            [i.tick_size for i in listed],
            [i.status for i in listed],
        )
        retired = await conn.fetch(SYNC_RETIRE_SQL, venue, [i.symbol for i in listed], trading)
    return SyncResult(len(listed), len(trading), sorted(r["symbol"] for r in retired if r["was_active"]))
