"""Filling ops.feed_gaps from the venues' REST trade history: page through what the venue keeps for a gap
(inside the venue's shared REST budget), store the trades with source 'rest' exactly once (the dedup key
drops what the stream already stored), record how the gap ended, and refresh the minutes it touched.

Used by `tower ingest` (soon after a gap is detected) and by `tower backfill` (gaps a stopped process left).
What a venue's history looks like is the venue's business (`Venue.backfill_url` / `parse_backfill`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from ingest.poller import retry_after
from ingest.rows import COLUMNS, Trade, record, utc_now
from ingest.venues.base import Gap, Venue
from ingest.writer import DB_ERRORS, dedup_sql
from tower.cagg_refresh import refresh_feature_caggs

log = logging.getLogger("ingest.backfill")

SQL_DIR = Path(__file__).parent / "sql"
OPEN_GAPS_SQL = (SQL_DIR / "open_gaps.sql").read_text()
RESOLVE_SQL = (SQL_DIR / "resolve_gap.sql").read_text()
STAGE_SQL = dedup_sql("stage.sql", "raw_trades")
MERGE_SQL = dedup_sql("merge.sql", "raw_trades")
RATE_LIMIT_RETRIES = 5  # 429/418 answers one gap may wait out before it is left for the next attempt
DEFAULT_RETRY_AFTER_S = 60.0
HISTORY_WINDOW = timedelta(hours=24)  # gaps older than this are not asked for by the ingest service


@dataclass
class Outcome:
    """How one gap's backfill ended."""

    gap: Gap
    resolution: str | None  # backfilled, partial, unavailable; None: the REST failed before anything came
    found: int = 0  # trades of the gap the venue returned
    stored: int = 0  # of them new to ops.raw_trades (the rest the stream had stored already)
    finished: bool = False  # the history was read to its end: resolved_at is set
    error: str | None = None  # why the REST could not be read (the gap stays open for a later attempt)


@dataclass
class _Fetched:
    trades: dict[str, Trade]
    finished: bool
    reaches_start: bool
    error: str | None


async def fetch_gap(venue: Venue, gap: Gap, client: httpx.AsyncClient) -> _Fetched | None:
    """Every trade of the gap the venue's REST still holds; None when there is nothing to ask."""
    cursor: str | None = None
    out = _Fetched({}, False, False, None)
    limited = 0
    url = venue.backfill_url(gap, cursor)
    if url is None:
        return None
    while url is not None:
        await venue.rest_budget.spend(venue.backfill_weight)
        try:
            response = await client.get(url)
        except (httpx.HTTPError, OSError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"[:300]
            return out
        if response.status_code in (418, 429):  # rate limited: every REST caller of the venue waits
            limited += 1
            venue.rest_budget.pause(retry_after(response, DEFAULT_RETRY_AFTER_S))
            if limited > RATE_LIMIT_RETRIES:
                out.error = f"HTTP {response.status_code} {RATE_LIMIT_RETRIES + 1} times"
                return out
            continue
        if response.status_code != 200:
            out.error = f"HTTP {response.status_code}: {response.text[:200]}"
            return out
        try:
            page = venue.parse_backfill(gap, response.content, utc_now())
        except ValueError as exc:
            out.error = str(exc)[:300]
            return out
        if pause := venue.poll_pause(response.headers):
            venue.rest_budget.pause(pause)
        out.trades.update((t.trade_id, t) for t in page.trades)
        out.reaches_start = out.reaches_start or page.reaches_start
        cursor = page.next_cursor
        url = None if cursor is None else venue.backfill_url(gap, cursor)
    out.finished = True
    return out


def resolution_of(gap: Gap, fetched: _Fetched) -> str:
    """backfilled when every missing trade came back (by count where ids are contiguous, else when the
    history reached back past the gap's start), partial otherwise."""
    if gap.missing is not None:
        complete = len(fetched.trades) >= gap.missing
    else:
        complete = fetched.reaches_start
    return "backfilled" if complete and fetched.finished else "partial"


async def store(conn: asyncpg.Connection, gap: Gap, trades: list[Trade], resolution: str, finished: bool) -> int:
    """The trades (those not stored yet) and the gap's new state, in one transaction; returns rows added."""
    async with conn.transaction():
        added = 0
        if trades:
            await conn.execute(STAGE_SQL)
            await conn.copy_records_to_table(
                "stage_raw_trades", columns=COLUMNS["raw_trades"], records=[record(t) for t in trades]
            )
            status = await conn.execute(MERGE_SQL)
            added = int(status.rsplit(" ", 1)[1])
        await conn.execute(RESOLVE_SQL, gap.id, resolution, added, finished)
    return added


async def backfill_gap(pool: asyncpg.Pool, venue: Venue, gap: Gap, client: httpx.AsyncClient) -> Outcome:
    fetched = await fetch_gap(venue, gap, client)
    if fetched is None:
        async with pool.acquire() as conn:
            await store(conn, gap, [], "unavailable", False)
        why = venue.no_backfill or "the gap has no trade ids or times to ask for"
        log.info("%s %s gap %d stays open: %s", venue.name, gap.symbol, gap.id, why)
        return Outcome(gap, "unavailable", error=None)
    if fetched.error is not None and not fetched.trades:
        log.warning(
            "%s %s gap %d: REST history unreadable (%s); left open", venue.name, gap.symbol, gap.id, fetched.error
        )
        return Outcome(gap, None, error=fetched.error)
    trades = sorted(fetched.trades.values(), key=lambda t: t.ts)
    resolution = resolution_of(gap, fetched)
    async with pool.acquire() as conn:
        added = await store(conn, gap, trades, resolution, fetched.finished)
        if added:
            await refresh_feature_caggs(conn, trades[0].ts, trades[-1].ts + timedelta(microseconds=1))
    log.info(
        "%s %s gap %d (%s missing): %d trades from REST, %d new; %s%s",
        venue.name,
        gap.symbol,
        gap.id,
        gap.missing if gap.missing is not None else "?",
        len(trades),
        added,
        resolution,
        "" if fetched.error is None else f" (cut short: {fetched.error}; left open)",
    )
    return Outcome(gap, resolution, len(trades), added, fetched.finished, fetched.error)


async def open_gaps(conn: asyncpg.Connection, venue: Venue, since: datetime) -> list[Gap]:
    return [Gap(**dict(r)) for r in await conn.fetch(OPEN_GAPS_SQL, venue.name, venue.symbols, since)]


async def backfill_open(
    pool: asyncpg.Pool, venues: list[Venue], since: datetime, concurrency: int = 2, timeout_s: float = 10.0
) -> list[Outcome]:
    """Backfills every open gap of these venues' symbols detected since `since`, `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)
    # A venue with no REST root (a --ws-url without --rest-url) is asked nothing: its gaps stay open as
    # they are, to be filled by a run that knows where the venue's REST is.
    with_rest = [v for v in venues if v.rest_root is not None]
    async with pool.acquire() as conn:
        work = [(v, g) for v in with_rest for g in await open_gaps(conn, v, since)]
    if not work:
        return []

    async def one(venue: Venue, gap: Gap) -> Outcome:
        async with limit:
            return await backfill_gap(pool, venue, gap, client)

    async with httpx.AsyncClient(timeout=timeout_s, headers={"User-Agent": "perps-ops-tower"}) as client:
        return list(await asyncio.gather(*(one(v, g) for v, g in work)))


async def run_backfill(
    dsn: str, venues: list[Venue], stop: asyncio.Event, every_s: float = 5.0, concurrency: int = 2
) -> None:
    """Inside `tower ingest`: every `every_s`, backfill the gaps of our symbols. A REST or database that
    fails backs the loop off (doubling, up to 5 min); nothing here ever stops the ingest."""
    wait, pool = every_s, None
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
                return
            started = time.monotonic()
            try:
                pool = pool or await asyncpg.create_pool(dsn, min_size=1, max_size=concurrency, timeout=5)
                outcomes = await backfill_open(pool, venues, utc_now() - HISTORY_WINDOW, concurrency)
                failed = any(o.error for o in outcomes)
            except DB_ERRORS as exc:
                log.warning("backfill: database unavailable (%s)", exc)
                failed = True
            wait = min(wait * 2, 300.0) if failed else every_s
            log.debug("backfill pass took %.2f s", time.monotonic() - started)
    finally:
        if pool is not None:
            with contextlib.suppress(*DB_ERRORS):
                await pool.close()
