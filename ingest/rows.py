"""Normalized rows, venue-independent. Every market row carries the venue's time (ts) and ours (recv_ts)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import ClassVar


def utc_now() -> datetime:
    return datetime.now(UTC)


_last_ms: list = [None, None]  # (ms, datetime) of the previous call


def from_ms(ms: int) -> datetime:
    """A venue's epoch milliseconds as a datetime. Consecutive messages often carry the same millisecond
    (a burst of trades, a trade and its book update): the previous answer is reused, not rebuilt."""
    if ms == _last_ms[0]:
        return _last_ms[1]
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    _last_ms[0], _last_ms[1] = ms, dt
    return dt


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
    # 'rest': recovered from the venue's REST history after a gap. Last, with a default: spill files
    # written before it existed hold records one column short (the writer pads them).
    source: str = "ws"

    table: ClassVar[str] = "raw_trades"


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

    table: ClassVar[str] = "raw_book_l1"


@dataclass(slots=True)
class BookDepth:
    """One sample of a full book (ingest/depth.py): quote notional within 10/25/50/100 bps of mid per side,
    slippage of the standard order (bps; None when the held book cannot fill it), how far the book reaches."""

    venue: str
    symbol: str
    ts: datetime  # venue time of the last applied update
    recv_ts: datetime
    mid: float
    bid_10bps: float
    ask_10bps: float
    bid_25bps: float
    ask_25bps: float
    bid_50bps: float
    ask_50bps: float
    bid_100bps: float
    ask_100bps: float
    buy_slip_bps: float | None
    sell_slip_bps: float | None
    reach_bps: float
    bid_levels: int
    ask_levels: int

    table: ClassVar[str] = "raw_book_depth"


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
    funding_rate: float | None = None  # per funding_interval, as a fraction
    funding_interval: timedelta | None = None
    next_funding_ts: datetime | None = None
    open_interest: float | None = None  # base units (contracts already converted)

    table: ClassVar[str] = "raw_derivs"


@dataclass(slots=True)
class Liquidation:
    venue: str
    symbol: str
    ts: datetime
    recv_ts: datetime
    side: str  # the forced order's side: 'sell' closes a long, 'buy' closes a short
    price: float
    qty: float  # base units

    table: ClassVar[str] = "raw_liquidations"


@dataclass(slots=True)
class Rejection:
    recv_ts: datetime
    venue: str
    stream: str | None
    symbol: str | None
    reason: str
    raw: str

    table: ClassVar[str] = "rejected_messages"


@dataclass(slots=True)
class GapEvent:
    venue: str
    symbol: str
    stream: str
    detected_at: datetime = field(default_factory=utc_now, kw_only=True)
    from_id: int | None
    to_id: int | None
    missing: int | None
    from_ts: datetime | None
    to_ts: datetime | None
    cause: str

    table: ClassVar[str] = "feed_gaps"


@dataclass(slots=True)
class ConnectionEvent:
    ts: datetime = field(default_factory=utc_now, kw_only=True)
    venue: str
    conn_id: str
    event: str  # connect, subscribed, disconnect, reconnect_attempt, stale, rotate, error, conflating, paused
    url: str | None = None
    streams: list[str] | None = None
    code: int | None = None
    reason: str | None = None
    attempt: int | None = None
    delay_s: float | None = None
    # Overload rows (migration 0805), last: spill files written before them hold records three columns short.
    symbol: str | None = None  # conflating: the instrument
    since: datetime | None = None  # conflating, paused: start of the interval that ends at ts
    conflated: int | None = None  # conflating: L1 updates replaced by a newer one and not stored

    table: ClassVar[str] = "connection_events"


Row = Trade | BookL1 | BookDepth | Derivs | Liquidation | Rejection | GapEvent | ConnectionEvent
ROW_TYPES: tuple[type[Row], ...] = (
    Trade, BookL1, BookDepth, Derivs, Liquidation, Rejection, GapEvent, ConnectionEvent
)  # fmt: skip

# Each row class declares its table's columns once, as its fields in order; the writer COPYs records
# in exactly this order, and the spill file stores them so (field order is therefore part of the
# spill format: reordering fields would misread spill files written before).
COLUMNS: dict[str, tuple[str, ...]] = {cls.table: tuple(f.name for f in fields(cls)) for cls in ROW_TYPES}
_RECORD = {cls: attrgetter(*COLUMNS[cls.table]) for cls in ROW_TYPES}


def record(row: Row) -> tuple:
    """The row as a COPY record: its fields in column order (attrgetter: one C call per row)."""
    return _RECORD[type(row)](row)
