"""L1 book conflation for an overloaded writer: of each symbol, only the latest update per short window.

A book row says what the best bid/ask is now; under overload a newer one of the same symbol makes the
older ones of the same window worth less than the trades they hold up. What was not stored is counted,
per symbol, and reported as 'conflating' rows of ops.connection_events covering [since, ts], so a
minute's book coverage can be judged from data.
"""

from __future__ import annotations

import time
from collections import Counter

from ingest import metrics
from ingest.rows import BookL1, ConnectionEvent, Row, utc_now


class Conflator:
    def __init__(self, conn_id: str, window_s: float, report_s: float) -> None:
        self.conn_id, self.window_s, self.report_s = conn_id, window_s, report_s
        self._held: dict[tuple[str, str], BookL1] = {}
        self._window_ends: float | None = None
        self._replaced: Counter[tuple[str, str]] = Counter()  # since the last report
        self._unmetered: Counter[str] = Counter()  # venue -> replaced, not yet counted in /metrics
        self._since = utc_now()
        self._next_report: float | None = None

    def take(self, rows: list[Row]) -> list[Row]:
        """The rows to store now: all but the L1 rows, which are held, one per symbol, until the window ends."""
        keep = []
        for row in rows:
            if type(row) is not BookL1:
                keep.append(row)
                continue
            key = (row.venue, row.symbol)
            if key in self._held:
                self._replaced[key] += 1
                self._unmetered[row.venue] += 1
            self._held[key] = row
        if self._held and self._window_ends is None:
            now = time.monotonic()
            self._window_ends = now + self.window_s
            if self._next_report is None:
                self._since, self._next_report = utc_now(), now + self.report_s
        return keep

    def deadline(self) -> float | None:
        """Monotonic time of the next release or report; None when nothing is held or counted."""
        times = [t for t in (self._window_ends, self._next_report if self._replaced else None) if t is not None]
        return min(times) if times else None

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def release(self, final: bool = False) -> list[Row]:
        """The held rows (the window ends) and, when the report interval is over or `final` (overload
        ended, or shutdown), one 'conflating' row per symbol that had updates replaced."""
        now = time.monotonic()
        rows: list[Row] = []
        if self._window_ends is not None and (final or now >= self._window_ends):
            rows.extend(self._held.values())
            self._held.clear()
            self._window_ends = None
        for venue, n in self._unmetered.items():
            metrics.BOOK_CONFLATED.labels(venue).inc(n)
        self._unmetered.clear()
        if self._next_report is not None and (final or now >= self._next_report):
            rows.extend(self._report())
        return rows

    def _report(self) -> list[ConnectionEvent]:
        end = utc_now()
        rows = [
            ConnectionEvent(
                venue,
                self.conn_id,
                "conflating",
                ts=end,
                symbol=symbol,
                since=self._since,
                conflated=n,
                reason=f"writer overloaded: L1 book conflated to the latest per {self.window_s * 1000:.0f} ms",
            )
            for (venue, symbol), n in sorted(self._replaced.items())
        ]
        self._replaced.clear()
        self._since, self._next_report = end, (time.monotonic() + self.report_s if self._held else None)
        return rows
