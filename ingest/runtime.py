"""Connections for any venue: connect, subscribe, read, heartbeat, watchdog, backoff, rotation.

Every connect, subscribe, disconnect (close code, reason), retry, stale verdict and rotation is
written to ops.connection_events through the same writer as the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
import time
from dataclasses import dataclass

import websockets

from ingest import metrics, wire
from ingest.rows import ConnectionEvent, utc_now
from ingest.snapshots import SnapshotFetcher
from ingest.venues.base import Route, Venue
from ingest.writer import Writer

log = logging.getLogger("ingest.runtime")

STASH_ROWS = 256  # rows per hop onto the writer's queue
STASH_S = 0.005  # longest a row waits for its group
# Frames parsed before the reader lets the loop run the writer (and other connections): a TCP read can hold
# thousands of frames, and many reads can be buffered; without this the writer starves while the feed is busy.
SLICE_FRAMES = 256
PAUSE_LOG_S = 60.0  # pauses under sustained overload repeat: log one a minute (each is still recorded)


@dataclass
class RuntimeConfig:
    stale_after_s: float = 30.0  # connected but no market data this long = failure
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    rotate_after_s: float | None = None  # Binance closes connections at 24 h: rotate before that
    open_timeout_s: float = 10.0
    subscribe_timeout_s: float = 10.0
    ssl_context: ssl.SSLContext | None = None  # None: the system trust store (tests pass their own CA)
    conn_tag: str = ""  # tells apart the connections of `--processes` workers, e.g. "-p1"


class Link:
    """One open connection of a route, with its reader, heartbeat and watchdog."""

    def __init__(self, runner: RouteRunner, ws: wire.WireConnection, conn_id: str) -> None:
        self.runner, self.ws, self.conn_id = runner, ws, conn_id
        self.last_data = time.monotonic()
        self.last_sent = time.monotonic()
        self.acked = 0
        self.born = time.monotonic()
        self.stale: str | None = None  # set by the watchdog before it closes the connection
        self.paused = False  # waiting for room in the writer: not reading, so not stale either
        self._pause_logged = -PAUSE_LOG_S
        self._stash_rows: list = []
        self._stash_timer: asyncio.TimerHandle | None = None
        self._stash_due = False  # the timer found the writer full: the next frame hands the group over
        self.first_data = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.reader = asyncio.create_task(self._read(), name=f"read {conn_id}")

    async def send(self, frame: bytes) -> None:
        await self.ws.send(frame.decode())
        self.last_sent = time.monotonic()

    async def _read(self) -> None:
        """Runs until the connection ends."""
        venue, route = self.runner.venue, self.runner.route
        guard = asyncio.create_task(self._guard(), name=f"guard {self.conn_id}")
        try:
            async for chunk in self.ws.messages():
                recv_ts = utc_now()  # the frames of one TCP read arrived together
                fresh = False  # last_data already says "now" for this read (a clock read per frame costs)
                for start in range(0, len(chunk), SLICE_FRAMES):
                    for frame in chunk[start : start + SLICE_FRAMES]:
                        parsed = venue.parse(frame, recv_ts)
                        if parsed.live and not fresh:
                            self.last_data = time.monotonic()
                            self.first_data.set()
                            fresh = True
                        if parsed.rows and (group := self._stash(parsed.rows)):
                            await self._hand_over(group)
                            fresh = False
                        if parsed.acked:
                            self.acked += parsed.acked
                            if self.acked >= route.expected_acks and not self.subscribed.is_set():
                                self.subscribed.set()
                        if parsed.error:
                            log.warning("%s: venue says: %s", self.conn_id, parsed.error)
                            await self.runner.event(self.conn_id, "error", reason=parsed.error)
                        if parsed.resync:
                            await self._resync(parsed.resync)
                    await asyncio.sleep(0)  # the writer's share of the loop
                    fresh = False
        finally:
            guard.cancel()
            if self._stash_timer is not None:
                self._stash_timer.cancel()
            group, self._stash_rows = self._stash_rows, []
            if group:  # awaited, not handed to a task, and past a full writer: nothing received may be lost
                await self.runner.writer.put(group, wait_for_room=False)

    async def _hand_over(self, group: list) -> None:
        """To the writer; when it has no room, stop reading until it has (the socket's TCP window fills:
        backpressure on the venue), and record the pause."""
        writer = self.runner.writer
        if writer.has_room():
            await writer.put(group)
            return
        venue = self.runner.venue.name
        since, started = utc_now(), time.monotonic()
        why = (
            "spill budget used up while the database is away"
            if writer.database_away
            else "database slower than the feed"
        )
        if started - self._pause_logged >= PAUSE_LOG_S:
            self._pause_logged = started
            log.warning(
                "%s: writer full (%d rows waiting: %s); not reading the socket until it has room "
                "(recorded as 'paused' connection events; logged once a minute)",
                self.conn_id,
                writer.backlog_rows(),
                why,
            )
        self.paused = True
        metrics.reader_paused(venue)
        try:
            await writer.put(group)
        except asyncio.CancelledError:
            self._stash_rows[:0] = group  # stopped mid-pause: handed over at the end of _read
            raise
        finally:
            seconds = time.monotonic() - started
            self.paused = False
            self.last_data = time.monotonic()  # the pause was ours: the feed is not stale because of it
            metrics.reader_resumed(venue, seconds)
        await self.runner.event(self.conn_id, "paused", since=since, reason=f"writer full: {why}")

    async def _resync(self, symbols: list[str]) -> None:
        """Depth books out of sync: ask for fresh snapshots on this connection, which carries their streams, or
        over REST for venues whose snapshots come from there."""
        for symbol in symbols:
            frames = self.runner.venue.depth_resync(symbol)
            for frame in frames:
                await self.send(frame)
            if not frames and self.runner.snapshots is not None:
                self.runner.snapshots.request(symbol)

    def _stash(self, rows: list) -> list | None:
        """Rows go to the writer in small groups (one queue hop per group, not per frame); returns a full
        group to hand over now. A group waits at most STASH_S, so a quiet feed is not held back."""
        if not self._stash_rows:
            self._stash_timer = asyncio.get_running_loop().call_later(STASH_S, self._flush_now)
        self._stash_rows.extend(rows)
        if len(self._stash_rows) < STASH_ROWS and not self._stash_due:
            return None
        self._stash_timer.cancel()
        self._stash_due = False
        group, self._stash_rows = self._stash_rows, []
        return group

    def _flush_now(self) -> None:
        """The group's time is up. A writer without room leaves it here: the next frame hands it over and
        pauses the reader (a task per late group would let the reader read on without bound)."""
        if self._stash_rows and not self.runner.writer.put_nowait(self._stash_rows):
            self._stash_due = True
            self._stash_timer = asyncio.get_running_loop().call_later(STASH_S, self._flush_now)
            return
        self._stash_rows = []

    async def _guard(self) -> None:
        """Heartbeat (venues that need one) and the staleness watchdog."""
        venue, cfg = self.runner.venue, self.runner.config
        stale_after_s = cfg.stale_after_s * self.runner.route.stale_factor
        tick = min(1.0, stale_after_s / 4, (venue.heartbeat_s or 60) / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            beat = venue.heartbeat()
            try:
                if beat is not None and venue.heartbeat_s and now - self.last_sent >= venue.heartbeat_s:
                    await self.send(beat)
                if now - self.last_data > stale_after_s and not self.paused:
                    self.stale = f"stale: no market data for {now - self.last_data:.1f} s"
                    await self.ws.close(4000, "stale: no market data")
                    return
            except websockets.WebSocketException:
                return  # closing already: the reader sees the same close and reports it


class RouteRunner:
    """Keeps one route connected forever: backoff with jitter and a cap, rotation before the venue's limit."""

    def __init__(
        self,
        venue: Venue,
        route: Route,
        writer: Writer,
        config: RuntimeConfig,
        stop: asyncio.Event,
        snapshots: SnapshotFetcher | None = None,
    ) -> None:
        self.venue, self.route, self.writer, self.config, self.stop = venue, route, writer, config, stop
        self.snapshots = snapshots  # REST depth snapshots (Binance); None for venues that resync over WS
        self._ids = itertools.count(1)

    async def event(self, conn_id: str, event: str, **fields) -> None:
        row = ConnectionEvent(self.venue.name, conn_id, event, url=self.route.url, **fields)
        await self.writer.put([row], wait_for_room=False)  # a few rows; a paused reader must still report

    async def open(self) -> Link:
        conn_id = f"{self.venue.name}-{self.route.name}{self.config.conn_tag}#{next(self._ids)}"
        ws = await wire.connect(self.route.url, self.config.open_timeout_s, self.config.ssl_context)
        link = Link(self, ws, conn_id)
        self.venue.counters["connects"] += 1  # a run that never connects exits non-zero (a wrong URL)
        await self.event(conn_id, "connect")
        log.info("connected %s to %s", conn_id, self.route.url)
        for frame in self.route.subscribe:
            await link.send(frame)
        acked = asyncio.ensure_future(link.subscribed.wait())
        await asyncio.wait(
            [acked, link.reader], timeout=self.config.subscribe_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        acked.cancel()
        if not link.subscribed.is_set():
            await ws.close(4001, "subscribe not acknowledged")
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await link.reader
            await self._disconnected(link, "subscribe not acknowledged")
            raise ConnectionError(
                f"{conn_id}: subscriptions not acknowledged within "
                f"{self.config.subscribe_timeout_s:.0f} s ({link.acked}/{self.route.expected_acks})"
            )
        await self.event(conn_id, "subscribed", streams=list(self.route.streams))
        log.info("%s subscribed %d streams", conn_id, len(self.route.streams))
        return link

    async def run(self) -> None:
        attempt = 0
        stop_wait = asyncio.ensure_future(self.stop.wait())
        try:
            while not self.stop.is_set():
                try:
                    link = await self.open()
                except (OSError, websockets.WebSocketException, TimeoutError, ConnectionError) as exc:
                    attempt += 1
                    await self._backoff(None, attempt, f"connect failed: {type(exc).__name__}: {exc}")
                    continue
                link, reason = await self._serve(link, stop_wait)
                if self.stop.is_set():
                    self.writer.admit_all()  # a paused reader must see the close, not wait for room for ever
                    await link.ws.close(1000, "shutdown")
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await link.reader
                    await self._disconnected(link, "shutdown")
                    return
                attempt = 0 if link.first_data.is_set() else attempt + 1
                await self._disconnected(link, reason)
                await self._backoff(link.conn_id, max(attempt, 1), reason)
        finally:
            stop_wait.cancel()

    async def _serve(self, link: Link, stop_wait: asyncio.Future) -> tuple[Link, str]:
        """Waits until the link ends or we stop; rotates it first if it lives long enough."""
        while True:
            rotate_in = None
            if self.config.rotate_after_s:
                rotate_in = max(0.0, self.config.rotate_after_s - (time.monotonic() - link.born))
            done, _ = await asyncio.wait(
                [link.reader, stop_wait], timeout=rotate_in, return_when=asyncio.FIRST_COMPLETED
            )
            if stop_wait in done:
                return link, "shutdown"
            if link.reader in done:
                return link, _why(link)
            link = await self._rotate(link)

    async def _rotate(self, old: Link) -> Link:
        """Overlap, then switch: the new connection is subscribed and delivering before the old one closes;
        the venue adapter drops what both deliver."""
        new = None
        try:
            new = await self.open()
            await asyncio.wait_for(new.first_data.wait(), self.config.stale_after_s)
        except (OSError, websockets.WebSocketException, TimeoutError, ConnectionError) as exc:
            log.warning("%s: rotation failed (%s); keeping the current connection", old.conn_id, exc)
            if new is not None:
                await new.ws.close(1000, "rotation abandoned")
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await new.reader
                await self._disconnected(new, "rotation abandoned")
            old.born = time.monotonic()  # try again after another full period
            return old
        await self.event(old.conn_id, "rotate", reason=f"replaced by {new.conn_id}")
        log.info("rotated %s -> %s", old.conn_id, new.conn_id)
        await old.ws.close(1000, "rotate")
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await old.reader
        await self._disconnected(old, "rotate")
        return new

    async def _disconnected(self, link: Link, reason: str) -> None:
        code = link.ws.close_code
        if reason.startswith("stale"):
            await self.event(link.conn_id, "stale", reason=reason)
        await self.event(link.conn_id, "disconnect", code=code, reason=(link.ws.close_reason or reason)[:500])

    async def _backoff(self, conn_id: str | None, attempt: int, reason: str) -> None:
        delay = min(self.config.backoff_cap_s, self.config.backoff_initial_s * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: many clients must not reconnect in lockstep
        conn_id = conn_id or f"{self.venue.name}-{self.route.name}"
        log.warning("%s: reconnecting in %.1f s because %s", conn_id, delay, reason)
        await self.event(conn_id, "reconnect_attempt", attempt=attempt, delay_s=delay, reason=reason[:500])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)


def _why(link: Link) -> str:
    exc = link.reader.exception() if not link.reader.cancelled() else None
    if link.stale:
        return link.stale
    code, reason = link.ws.close_code, link.ws.close_reason
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"
    return f"connection closed (code {code}, reason {reason!r})"


async def run_venue(venue: Venue, writer: Writer, config: RuntimeConfig, stop: asyncio.Event) -> None:
    snapshots = SnapshotFetcher.for_venue(venue, writer, stop)
    runners = [RouteRunner(venue, route, writer, config, stop, snapshots) for route in venue.routes()]
    ticks = [depth_ticks(venue, writer, stop)] if venue.depth is not None else []
    try:
        await asyncio.gather(*(r.run() for r in runners), *ticks)
    finally:
        if snapshots is not None:
            await snapshots.close()


async def depth_ticks(venue: Venue, writer: Writer, stop: asyncio.Event) -> None:
    """Samples of books whose last change got no later update to be sampled with (a quiet book)."""
    assert venue.depth is not None
    every_s = min(1.0, venue.depth.config.sample_s / 2)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        await writer.put(venue.depth_tick(utc_now()))
