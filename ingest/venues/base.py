"""What a venue adapter provides: where to connect, what to send, and how to read what comes back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import orjson
from pydantic import Field

from ingest.rows import Rejection, Row

# Field types shared by the venues' message models. Bounds keep impossible values at the edge, as
# rejections: a time past 2100 would not convert to a datetime, an id past int64 would not COPY.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
VenueMs = Annotated[int, Field(ge=0, le=4_102_444_800_000)]   # epoch milliseconds up to 2100-01-01
VenueId = Annotated[int, Field(ge=0, le=2**63 - 1)]


@dataclass(frozen=True)
class Route:
    """One physical connection: its URL, the streams it carries and the messages that subscribe them."""

    name: str  # e.g. "market-0": the route and shard index, part of every conn_id
    url: str
    streams: tuple[str, ...]
    subscribe: tuple[bytes, ...]  # frames to send right after connecting
    # Trades-only routes may be legitimately quiet much longer than book routes: the staleness
    # watchdog allows them stale_after_s * stale_factor.
    stale_factor: float = 1.0


@dataclass(slots=True)
class Parsed:
    """What one frame meant: rows for the writer (data, rejections, gaps) and control information."""

    rows: list[Row] = field(default_factory=list)
    live: bool = False       # carried market data: only this resets the staleness watchdog
    acked: int = 0           # subscriptions the venue confirmed
    error: str | None = None  # the venue reported an error (logged and recorded, never fatal)


class Venue(ABC):
    """A venue adapter maps the venue's own messages to normalized rows, and nothing else.

    Per-symbol state (last ids, last times) lives here, not per connection, so duplicates from
    overlapping connections (rotation, reconnect replays) are recognized across connections.
    """

    name: str
    heartbeat_s: float | None = None  # send heartbeat() when we have sent nothing for this long

    def __init__(self, symbols: list[str]) -> None:
        if not symbols:
            raise ValueError(f"{self.name}: no symbols given")
        self.symbols = list(dict.fromkeys(symbols))
        self.counters: Counter[str] = Counter()

    @abstractmethod
    def routes(self) -> list[Route]: ...

    @abstractmethod
    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed: ...

    def heartbeat(self) -> bytes | None:
        """An application-level ping, for venues that close connections they hear nothing from."""
        return None

    @abstractmethod
    def instrument(self, symbol: str) -> tuple[str, str]:
        """(asset, quote) of a symbol, for ops.instruments."""

    def decode(self, frame: str | bytes | bytearray, recv_ts: datetime) -> tuple[object, Parsed | None]:
        """The frame as JSON, or (None, the quarantine to return) when it is not JSON at all."""
        try:
            return orjson.loads(frame), None
        except orjson.JSONDecodeError:
            return None, Parsed([self.reject(recv_ts, None, None, "malformed_json", frame)])

    def reject(self, recv_ts: datetime, stream: str | None, symbol: str | None, reason: str,
               raw: str | bytes) -> Rejection:
        self.counters[f"rejected.{reason.split(':', 1)[0]}"] += 1
        text = bytes(raw).decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
        text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL; keep it visible instead
        return Rejection(recv_ts, self.name, stream, symbol, reason, text)


def validation_reason(exc: Exception) -> str:
    """A short reason from a pydantic ValidationError: 'invalid: p: Input should be greater than 0'."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return f"invalid: {exc}"
    first = errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    kind = "missing_field" if first["type"] == "missing" else "invalid"
    return f"{kind}: {where}: {first['msg']}"[:200]
