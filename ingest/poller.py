"""REST polling for what a venue does not stream (Binance open interest): each poll on its own timer,
spread out so requests do not bunch up, with the venue's rate-limit answers obeyed."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time

import httpx

from ingest.rows import ConnectionEvent, utc_now
from ingest.venues.base import Venue
from ingest.writer import Writer

log = logging.getLogger("ingest.poller")

CONN_ID = "rest"
ERROR_BACKOFF_CAP_S = 60.0


async def run_polls(venue: Venue, writer: Writer, stop: asyncio.Event, timeout_s: float = 10.0) -> None:
    """Until stop: fetch each of venue.polls() every poll.every_s and hand the rows to the writer."""
    polls = venue.polls()
    if not polls:
        return
    start = time.monotonic()
    # First round staggered over one interval: n symbols means one request every every_s / n seconds.
    due = [(start + i * p.every_s / len(polls), i) for i, p in enumerate(polls)]
    heapq.heapify(due)
    failures = 0
    async with httpx.AsyncClient(timeout=timeout_s, headers={"User-Agent": "perps-ops-tower"}) as client:
        while not stop.is_set():
            at, i = heapq.heappop(due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at - time.monotonic()))
                return
            poll = polls[i]
            if held := venue.rest_budget.paused_s():  # a rate-limit answer to the backfill holds us too
                heapq.heappush(due, (time.monotonic() + held, i))
                continue
            pause = 0.0
            try:
                response = await client.get(poll.url)
                recv_ts = utc_now()
                if response.status_code in (418, 429):  # rate limited (418: banned for ignoring 429s)
                    pause = retry_after(response, default=60.0)
                    await _event(writer, venue, f"HTTP {response.status_code} for {poll.name}; pausing {pause:.0f} s")
                elif response.status_code != 200:
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code}", request=response.request, response=response
                    )
                else:
                    failures = 0
                    parsed = venue.parse_poll(poll, response.content, recv_ts)
                    await writer.put(parsed.rows)
                    pause = venue.poll_pause(response.headers)
            except (httpx.HTTPError, OSError) as exc:
                failures += 1
                pause = min(ERROR_BACKOFF_CAP_S, 2.0**failures)
                venue.counters["poll_errors"] += 1
                await _event(writer, venue, f"{poll.name}: {type(exc).__name__}: {exc}"[:300])
            heapq.heappush(due, (max(at + poll.every_s, time.monotonic() + pause), i))
            if pause:  # a pause holds every poll of the venue back, not only this one, and its backfill
                venue.rest_budget.pause(pause)
                due = [(max(t, time.monotonic() + pause), j) for t, j in due]
                heapq.heapify(due)


def retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


async def _event(writer: Writer, venue: Venue, reason: str) -> None:
    log.warning("%s %s: %s", venue.name, CONN_ID, reason)
    await writer.put([ConnectionEvent(venue.name, CONN_ID, "error", reason=reason)])
