"""REST order-book snapshots for venues whose books sync from one (Binance): when the adapter asks for a
resync (`Parsed.resync`) and has no WebSocket frames for it, the snapshot is fetched here and handed back to
the adapter (`parse_depth_snapshot`), its rows to the writer. One request in flight per symbol; each one
spends the venue's REST weight budget and obeys its rate-limit pauses, like the polls and the backfill."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import httpx

from ingest.poller import retry_after
from ingest.rows import ConnectionEvent, utc_now
from ingest.venues.base import Venue
from ingest.writer import Writer

log = logging.getLogger("ingest.snapshots")

CONN_ID = "rest-depth"
DEFAULT_RETRY_AFTER_S = 60.0


class SnapshotFetcher:
    def __init__(
        self,
        venue: Venue,
        writer: Writer,
        stop: asyncio.Event,
        *,
        timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.venue, self.writer, self.stop = venue, writer, stop
        self.timeout_s, self.backoff_initial_s, self.backoff_cap_s = timeout_s, backoff_initial_s, backoff_cap_s
        self._wanted: set[str] = set()  # asked for since its task last started a request
        self._tasks: dict[str, asyncio.Task] = {}
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def for_venue(cls, venue: Venue, writer: Writer, stop: asyncio.Event) -> SnapshotFetcher | None:
        """A fetcher for a venue that keeps books synced from REST snapshots; None for the others."""
        if venue.depth is None or venue.depth_snapshot_url(venue.symbols[0]) is None:
            return None
        return cls(venue, writer, stop)

    def request(self, symbol: str) -> None:
        """A fresh snapshot for `symbol`, soon. A request while one is in flight is served after it: the answer
        in flight may predate the break that asked again."""
        self._wanted.add(symbol)
        task = self._tasks.get(symbol)
        if task is None or task.done():
            self._tasks[symbol] = asyncio.create_task(self._serve(symbol), name=f"snapshot {self.venue.name} {symbol}")

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _serve(self, symbol: str) -> None:
        failures = 0
        while symbol in self._wanted and not self.stop.is_set():
            self._wanted.discard(symbol)
            if await self._fetch(symbol):
                failures = 0
                continue
            self._wanted.add(symbol)  # not synced yet: ask again after a backoff
            failures += 1
            delay = min(self.backoff_cap_s, self.backoff_initial_s * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)

    async def _fetch(self, symbol: str) -> bool:
        """One snapshot request; True when it synced the book."""
        venue = self.venue
        url = venue.depth_snapshot_url(symbol)
        if url is None:
            return True
        await venue.rest_budget.spend(venue.depth_snapshot_weight)
        venue.counters["depth.snapshot_requests"] += 1
        try:
            response = await self._http().get(url)
        except (httpx.HTTPError, OSError) as exc:
            return await self._failed(f"{symbol} snapshot: {type(exc).__name__}: {exc}")
        recv_ts = utc_now()
        if response.status_code in (418, 429):  # rate limited: every REST caller of the venue waits
            pause = retry_after(response, DEFAULT_RETRY_AFTER_S)
            venue.rest_budget.pause(pause)
            return await self._failed(f"HTTP {response.status_code} for {symbol} snapshot; pausing {pause:.0f} s")
        if response.status_code != 200:
            return await self._failed(f"{symbol} snapshot: HTTP {response.status_code}: {response.text[:200]}")
        if pause := venue.poll_pause(response.headers):
            venue.rest_budget.pause(pause)
        try:
            parsed = venue.parse_depth_snapshot(symbol, response.content, recv_ts)
        except ValueError as exc:
            await self.writer.put([venue.reject(recv_ts, "depth", symbol, str(exc)[:200], response.content)])
            return await self._failed(f"{symbol} snapshot: {exc}")
        await self.writer.put(parsed.rows)
        return symbol not in parsed.resync

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, headers={"User-Agent": "perps-ops-tower"})
        return self._client

    async def _failed(self, reason: str) -> bool:
        self.venue.counters["depth.snapshot_errors"] += 1
        log.warning("%s %s: %s", self.venue.name, CONN_ID, reason)
        await self.writer.put([ConnectionEvent(self.venue.name, CONN_ID, "error", reason=reason[:300])])
        return False
