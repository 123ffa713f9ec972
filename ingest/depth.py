"""Full order books and what is sampled from them: notional within bps of mid, slippage, reach.

A venue adapter keeps one `DepthBook` per symbol in sync with the venue's own rules (snapshot + diffs,
sequence numbers, checksums) and hands it to its `DepthSampler` after every applied update; the sampler
decides when a `BookDepth` row is due (at most every `sample_s`, never without a change) and refuses
to sample a book that is out of sync or crossed.

Sizes in a book are base units (an adapter converts contracts first) and prices quote currency, so
every band is quote-currency notional and venues compare directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate

from ingest.rows import BookDepth

BANDS_BPS = (10, 25, 50, 100)
Level = tuple[float, float]  # (price, size in base units)
EDGE = 1e-12  # relative slack on band edges, far below any tick: float rounding must not drop an edge level


class DepthBook:
    """One symbol's book, price -> size per side. `synced` is False until a snapshot has been applied and
    again after any break: an unsynced book is never sampled."""

    __slots__ = ("asks", "bids", "changed", "recv_ts", "resyncing", "synced", "ts", "update_id")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.ts: datetime | None = None  # venue time of the last applied update
        self.recv_ts: datetime | None = None
        self.update_id: int | None = None  # the venue's sequence number of the last applied update
        self.synced = False
        self.changed = False  # applied something since the last sample
        self.resyncing = False  # a fresh snapshot has been asked for (and not yet applied)

    def reset(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        ts: datetime,
        recv_ts: datetime,
        update_id: int | None = None,
    ) -> None:
        """A snapshot: both sides replaced; the book is in sync from here."""
        self.bids = {p: q for p, q in bids if q > 0}
        self.asks = {p: q for p, q in asks if q > 0}
        self.ts, self.recv_ts, self.update_id = ts, recv_ts, update_id
        self.synced = True
        self.changed = True
        self.resyncing = False

    def apply(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        ts: datetime,
        recv_ts: datetime,
        update_id: int | None = None,
    ) -> None:
        """A diff: each level's new size at that price; size 0 removes the level."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if size > 0:
                    side[price] = size
                else:
                    side.pop(price, None)
        self.ts, self.recv_ts, self.update_id = ts, recv_ts, update_id
        self.changed = True

    def invalidate(self) -> None:
        """Out of sync (a sequence break, a checksum mismatch, a disconnect): emptied until the next snapshot."""
        self.bids.clear()
        self.asks.clear()
        self.synced = False
        self.changed = False
        self.update_id = None

    def best_bid(self) -> float | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> float | None:
        return min(self.asks) if self.asks else None

    def crossed(self) -> bool:
        """Best bid at or above best ask: updates were missed (venues never publish a crossed book)."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def sorted_bids(self, limit: int | None = None) -> list[Level]:
        """Best first."""
        return sorted(self.bids.items(), reverse=True)[:limit]

    def sorted_asks(self, limit: int | None = None) -> list[Level]:
        return sorted(self.asks.items())[:limit]

    def trim(self, levels: int) -> None:
        """Keeps the best `levels` per side: the far levels a diff stream keeps adding are not in the
        snapshot's range, so they would make the book look deeper (and reach further) than it is known."""
        if len(self.bids) > levels:
            self.bids = dict(self.sorted_bids(levels))
        if len(self.asks) > levels:
            self.asks = dict(self.sorted_asks(levels))


@dataclass(frozen=True)
class DepthFigures:
    """What one book state says about liquidity (the numeric columns of ops.raw_book_depth)."""

    mid: float
    bid_bands: tuple[float, ...]  # quote notional within BANDS_BPS of mid, bid side
    ask_bands: tuple[float, ...]
    buy_slip_bps: float | None
    sell_slip_bps: float | None
    reach_bps: float
    bid_levels: int
    ask_levels: int


def measure(bids: list[Level], asks: list[Level], notional: float) -> DepthFigures:
    """Figures of a book given best-first levels on each side (both non-empty, not crossed)."""
    mid = (bids[0][0] + asks[0][0]) / 2
    # EDGE: a level exactly at a band's edge is within it on both sides (mid x (1 + 50 bps) rounds below 20100)
    bid_bands = _bands(bids, [mid * (1 - b / 1e4) * (1 - EDGE) for b in BANDS_BPS], below=True)
    ask_bands = _bands(asks, [mid * (1 + b / 1e4) * (1 + EDGE) for b in BANDS_BPS], below=False)
    buy = _average_fill(asks, notional)
    sell = _average_fill(bids, notional)
    reach = min(mid - bids[-1][0], asks[-1][0] - mid) / mid * 1e4
    return DepthFigures(
        mid=mid,
        bid_bands=bid_bands,
        ask_bands=ask_bands,
        buy_slip_bps=None if buy is None else max(0.0, (buy - mid) / mid * 1e4),
        sell_slip_bps=None if sell is None else max(0.0, (mid - sell) / mid * 1e4),
        reach_bps=reach,
        bid_levels=len(bids),
        ask_levels=len(asks),
    )


def _bands(levels: list[Level], limits: list[float], *, below: bool) -> tuple[float, ...]:
    """Notional of the best-first levels up to each limit (nearest first; bids: prices >= limit, asks:
    prices <= limit), in one walk: a sample's cost is one pass over the levels within the widest band."""
    totals: list[float] = []
    total = 0.0
    for price, size in levels:
        while (price < limits[len(totals)]) if below else (price > limits[len(totals)]):
            totals.append(total)
            if len(totals) == len(limits):
                return tuple(totals)
        total += price * size
    return tuple(totals + [total] * (len(limits) - len(totals)))


def _average_fill(levels: list[Level], notional: float) -> float | None:
    """Average price of a market order for `notional` quote currency walking best-first levels; None when
    the levels hold less than that."""
    filled_notional = filled_size = 0.0
    for price, size in levels:
        take = min(size, (notional - filled_notional) / price)
        filled_notional += take * price
        filled_size += take
        if filled_notional >= notional * (1 - 1e-12):
            return filled_notional / filled_size
    return None


def cumulative_notional(levels: list[Level]) -> list[float]:
    """Running notional of best-first levels (for cards and tests)."""
    return list(accumulate(p * q for p, q in levels))


@dataclass(frozen=True)
class DepthConfig:
    """How a venue samples its books (TOWER_INGEST_DEPTH_SAMPLE_MS, TOWER_INGEST_SLIPPAGE_NOTIONAL)."""

    sample_s: float = 1.0
    slippage_notional: float = 100_000.0
    # Levels kept per side after each sample; the venue's snapshot depth caps what is known anyway.
    max_levels: int = 5000


class CrossedBook(Exception):
    """A book crossed after applying updates: updates were missed. The book is invalidated; the adapter
    records the break (ops.feed_gaps, cause 'resync') and resyncs."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"{symbol}: book crossed after applying updates")
        self.symbol = symbol


class DepthSampler:
    """Turns a venue's books into ops.raw_book_depth rows: a book is sampled after an update when it changed
    and its last sample is at least `sample_s` old (receive time), or by `flush()` for a change that was not
    followed by another update in time."""

    def __init__(self, venue: str, config: DepthConfig) -> None:
        self.venue = venue
        self.config = config
        self._last: dict[str, datetime] = {}  # symbol -> receive time of its last sample
        self.books: dict[str, DepthBook] = {}
        self.samples = 0
        self.crossed = 0

    def book(self, symbol: str) -> DepthBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = DepthBook()
        return book

    def after_update(self, symbol: str, book: DepthBook) -> BookDepth | None:
        """The sample due now, or None. Raises CrossedBook (the book invalidated) for a crossed book."""
        if not (book.synced and book.changed) or book.recv_ts is None:
            return None
        last = self._last.get(symbol)
        if last is not None and (book.recv_ts - last).total_seconds() < self.config.sample_s:
            return None
        return self.sample(symbol, book)

    def sample(self, symbol: str, book: DepthBook) -> BookDepth | None:
        """The book's sample now, whatever the cadence; None when a side is empty. Raises CrossedBook."""
        if not book.bids or not book.asks or book.ts is None or book.recv_ts is None:
            return None
        # Never more than max_levels: beyond the venue's subscribed depth the levels are not kept up to date.
        bids, asks = book.sorted_bids(self.config.max_levels), book.sorted_asks(self.config.max_levels)
        if bids[0][0] >= asks[0][0]:
            book.invalidate()
            self.crossed += 1
            raise CrossedBook(symbol)
        figures = measure(bids, asks, self.config.slippage_notional)
        if len(book.bids) > self.config.max_levels or len(book.asks) > self.config.max_levels:
            book.trim(self.config.max_levels)
        book.changed = False
        self._last[symbol] = book.recv_ts
        self.samples += 1
        return depth_row(self.venue, symbol, book.ts, book.recv_ts, figures)

    def flush(self, now: datetime) -> tuple[list[BookDepth], list[str]]:
        """Samples of changed books whose last sample is at least `sample_s` older than `now` (a timer calls
        this so the last change before a quiet spell is stored too), and the symbols found crossed."""
        rows: list[BookDepth] = []
        crossed: list[str] = []
        for symbol, book in self.books.items():
            if not (book.synced and book.changed):
                continue
            last = self._last.get(symbol)
            if last is not None and (now - last).total_seconds() < self.config.sample_s:
                continue
            try:
                row = self.sample(symbol, book)
            except CrossedBook:
                crossed.append(symbol)
                continue
            if row is not None:
                rows.append(row)
        return rows, crossed


def depth_row(venue: str, symbol: str, ts: datetime, recv_ts: datetime, f: DepthFigures) -> BookDepth:
    b, a = f.bid_bands, f.ask_bands
    return BookDepth(
        venue, symbol, ts, recv_ts, f.mid,
        b[0], a[0], b[1], a[1], b[2], a[2], b[3], a[3],
        f.buy_slip_bps, f.sell_slip_bps, f.reach_bps, f.bid_levels, f.ask_levels,
    )  # fmt: skip
