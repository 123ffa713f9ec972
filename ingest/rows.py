"""Normalized rows, venue-independent. Every market row carries the venue's time (ts) and ours (recv_ts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(slots=True)
class Trade:
    venue: str
    symbol: str
    ts: datetime
    recv_ts: datetime
    trade_id: str
    price: float
    qty: float
    side: str  # aggressor: 'buy' or 'sell'

    table = "raw_trades"

    def record(self) -> tuple:
        return (self.venue, self.symbol, self.ts, self.recv_ts, self.trade_id, self.price, self.qty, self.side)


@dataclass(slots=True)
class BookL1:
    venue: str
    symbol: str
    ts: datetime
    recv_ts: datetime
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float
    update_id: int | None

    table = "raw_book_l1"

    def record(self) -> tuple:
        return (self.venue, self.symbol, self.ts, self.recv_ts, self.bid_px, self.bid_qty, self.ask_px,
                self.ask_qty, self.update_id)


@dataclass(slots=True)
class Derivs:
    """Derivatives context of one instrument at one time. A channel that carries only some of the
    fields (OKX sends mark, index, funding and open interest on separate channels) leaves the rest None."""

    venue: str
    symbol: str
    ts: datetime
    recv_ts: datetime
    mark_px: float | None = None
    index_px: float | None = None
    funding_rate: float | None = None          # per funding_interval, as a fraction
    funding_interval: timedelta | None = None
    next_funding_ts: datetime | None = None
    open_interest: float | None = None         # base units (contracts already converted)

    table = "raw_derivs"

    def record(self) -> tuple:
        return (self.venue, self.symbol, self.ts, self.recv_ts, self.mark_px, self.index_px, self.funding_rate,
                self.funding_interval, self.next_funding_ts, self.open_interest)


@dataclass(slots=True)
class Liquidation:
    venue: str
    symbol: str
    ts: datetime
    recv_ts: datetime
    side: str  # the forced order's side: 'sell' closes a long, 'buy' closes a short
    price: float
    qty: float  # base units

    table = "raw_liquidations"

    def record(self) -> tuple:
        return (self.venue, self.symbol, self.ts, self.recv_ts, self.side, self.price, self.qty)


@dataclass(slots=True)
class Rejection:
    recv_ts: datetime
    venue: str
    stream: str | None
    symbol: str | None
    reason: str
    raw: str

    table = "rejected_messages"

    def record(self) -> tuple:
        return (self.recv_ts, self.venue, self.stream, self.symbol, self.reason, self.raw)


@dataclass(slots=True)
class GapEvent:
    venue: str
    symbol: str
    stream: str
    from_id: int | None
    to_id: int | None
    missing: int | None
    from_ts: datetime | None
    to_ts: datetime | None
    cause: str
    detected_at: datetime = field(default_factory=utc_now)

    table = "feed_gaps"

    def record(self) -> tuple:
        return (self.venue, self.symbol, self.stream, self.detected_at, self.from_id, self.to_id, self.missing,
                self.from_ts, self.to_ts, self.cause)


@dataclass(slots=True)
class ConnectionEvent:
    venue: str
    conn_id: str
    event: str  # connect, subscribed, disconnect, reconnect_attempt, stale, rotate, error
    url: str | None = None
    streams: list[str] | None = None
    code: int | None = None
    reason: str | None = None
    attempt: int | None = None
    delay_s: float | None = None
    ts: datetime = field(default_factory=utc_now)

    table = "connection_events"

    def record(self) -> tuple:
        return (self.ts, self.venue, self.conn_id, self.event, self.url, self.streams, self.code, self.reason,
                self.attempt, self.delay_s)


Row = Trade | BookL1 | Derivs | Liquidation | Rejection | GapEvent | ConnectionEvent

# Column order of record() per table; the writer COPYs in exactly this order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_trades": ("venue", "symbol", "ts", "recv_ts", "trade_id", "price", "qty", "side"),
    "raw_book_l1": ("venue", "symbol", "ts", "recv_ts", "bid_px", "bid_qty", "ask_px", "ask_qty", "update_id"),
    "raw_derivs": ("venue", "symbol", "ts", "recv_ts", "mark_px", "index_px", "funding_rate", "funding_interval",
                   "next_funding_ts", "open_interest"),
    "raw_liquidations": ("venue", "symbol", "ts", "recv_ts", "side", "price", "qty"),
    "rejected_messages": ("recv_ts", "venue", "stream", "symbol", "reason", "raw"),
    "feed_gaps": ("venue", "symbol", "stream", "detected_at", "from_id", "to_id", "missing", "from_ts", "to_ts",
                  "cause"),
    "connection_events": ("ts", "venue", "conn_id", "event", "url", "streams", "code", "reason", "attempt",
                          "delay_s"),
}
