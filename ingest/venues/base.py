"""What a venue adapter provides: where to connect, what to send, and how to read what comes back."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, ClassVar, TypeVar

import httpx
import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.budget import RestBudget
from ingest.depth import CrossedBook, DepthBook, DepthConfig, DepthSampler
from ingest.rows import GapEvent, Rejection, Row, Trade

# Field types shared by the venues' message models. Bounds keep impossible values at the edge, as
# rejections: a time past 2100 would not convert to a datetime, an id past int64 would not COPY.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
VenueMs = Annotated[int, Field(ge=0, le=4_102_444_800_000)]  # epoch milliseconds up to 2100-01-01
VenueId = Annotated[int, Field(ge=0, le=2**63 - 1)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# Funding per interval as a fraction. Venues cap it far below 10 % (Binance +-3 %, OKX +-1.5 %,
# Hyperliquid 4 %/h): anything past +-100 % is a broken message, not a market.
FundingRate = Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]


# The same bounds for the hot-path frames, msgspec Structs (decoded and validated in one pass, ~5x
# cheaper than orjson + pydantic). msgspec has no allow_inf_nan: NaN fails every comparison, and an
# upper bound at the largest float turns infinity away.
MAX_FLOAT = sys.float_info.max
FramePositive = Annotated[float, msgspec.Meta(gt=0, le=MAX_FLOAT)]
FrameNonNegative = Annotated[float, msgspec.Meta(ge=0, le=MAX_FLOAT)]
FrameMs = Annotated[int, msgspec.Meta(ge=0, le=4_102_444_800_000)]
FrameId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
FrameFunding = Annotated[float, msgspec.Meta(ge=-1, le=1)]

M = TypeVar("M", bound=BaseModel | msgspec.Struct)
# What a message that fails its model raises, pydantic model or msgspec Struct.
VALIDATION_ERRORS = (ValidationError, msgspec.ValidationError)


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
    # Acknowledgements that mean "all subscribed" when a venue answers per channel rather than per frame
    # (OKX acks every arg of a subscribe frame separately); None: one ack per subscribe frame.
    acks: int | None = None

    @property
    def expected_acks(self) -> int:
        return len(self.subscribe) if self.acks is None else self.acks


class Message(BaseModel):
    """A venue message model: the fields we use are validated, the ones venues add over time ignored."""

    model_config = ConfigDict(extra="ignore")


class Frame(msgspec.Struct):
    """A hot-path venue message (trades, L1, derivatives context): msgspec decodes and validates it in one
    pass. Like `Message`, fields venues add over time are ignored."""


def validate(model: type[M], item: object) -> M:
    """`item` (decoded JSON) as `model`; raises one of VALIDATION_ERRORS. Frames convert leniently, as
    pydantic does: venues send numbers as strings ("91000.5")."""
    if issubclass(model, msgspec.Struct):
        return msgspec.convert(item, model, strict=False)
    return model.model_validate(item)


class Recent:
    """Keys seen lately, per symbol, in a bounded memory: what an overlapping connection or the snapshot
    after a resubscribe repeats (trade ids, liquidations) is recognized without growing forever."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: dict[str, tuple[set, deque]] = {}

    def __contains__(self, item: tuple[str, Hashable]) -> bool:
        symbol, key = item
        known = self._keys.get(symbol)
        return known is not None and key in known[0]

    def first_time(self, symbol: str, key: Hashable) -> bool:
        """True (and remembered) the first time a key is seen; False for a repeat."""
        if (symbol, key) in self:
            return False
        self.add(symbol, key)
        return True

    def add(self, symbol: str, key: Hashable) -> None:
        seen, order = self._keys.setdefault(symbol, (set(), deque()))
        seen.add(key)
        order.append(key)
        if len(order) > self.size:
            seen.discard(order.popleft())


@dataclass(frozen=True)
class Poll:
    """A REST resource read on a timer, for what a venue does not stream (Binance open interest)."""

    name: str  # "<what>:<symbol>", e.g. "openInterest:BTCUSDT"
    url: str
    every_s: float


@dataclass(frozen=True)
class Gap:
    """A stored hole in a feed (ops.feed_gaps) to fill from the venue's REST history. Ids are the last seen
    before and the first seen after the gap, both stored already: what is missing lies strictly between."""

    id: int
    venue: str
    symbol: str
    stream: str
    from_id: int | None
    to_id: int | None
    missing: int | None
    from_ts: datetime | None
    to_ts: datetime | None


@dataclass
class BackfillPage:
    """One REST history answer: the trades of the gap it held, and where the next page starts."""

    trades: list[Trade] = field(default_factory=list)
    next_cursor: str | None = None  # None: nothing more to ask for this gap
    reaches_start: bool = False  # the history went back past the gap's start (venues without ids)


@dataclass(frozen=True)
class ListedInstrument:
    """One perpetual from a venue's own instrument list (REST), for the symbol check, `--symbols all` and
    `tower instruments sync`."""

    symbol: str
    asset: str
    quote: str
    contract_size: float  # base units per contract (1 where sizes are already base units)
    tick_size: float | None  # price increment; None when the venue does not say
    status: str  # the venue's own word: TRADING, Trading, live, delisted...
    trading: bool  # open for trading now (False: delisted, settling, pre-launch, suspended)


@dataclass(slots=True)
class Parsed:
    """What one frame meant: rows for the writer (data, rejections, gaps) and control information."""

    rows: list[Row] = field(default_factory=list)
    live: bool = False  # carried market data: only this resets the staleness watchdog
    acked: int = 0  # subscriptions the venue confirmed
    error: str | None = None  # the venue reported an error (logged and recorded, never fatal)
    resync: list[str] = field(default_factory=list)  # symbols whose depth book needs a fresh snapshot


class Venue(ABC):
    """A venue adapter maps the venue's own messages to normalized rows, and nothing else.

    Per-symbol state (last ids, last times) lives here, not per connection, so duplicates from
    overlapping connections (rotation, reconnect replays) are recognized across connections.
    """

    # Facts about the venue, read by settings, the CLI and the runtime (never `if venue == "..."`).
    name: ClassVar[str]
    example_symbols: ClassVar[tuple[str, ...]]  # shown when --symbols is missing
    heartbeat_s: float | None = None  # send heartbeat() when we have sent nothing for this long (default)
    idle_close_s: ClassVar[float | None] = None  # the venue closes connections silent this long
    rotate_after_s: ClassVar[float | None] = None  # reconnect (with overlap) before the venue's age limit
    has_rest: ClassVar[bool] = False  # reads something over REST: takes rest_url
    rest_mainnet: ClassVar[str | None] = None  # REST roots, for venues with REST
    rest_testnet: ClassVar[str | None] = None
    rest_uses: ClassVar[str] = "the instrument check"  # what turns off without a REST root (for the notice)
    counts_contracts: ClassVar[bool] = False  # sizes on the wire are contracts: prepare() needs sizes
    text_controls: ClassVar[tuple[str | bytes, ...]] = ()  # plain-text frames that are control, not JSON
    # Trade history over REST, for gaps: None when the venue has it, else why not (stored nowhere, said in
    # logs and docs); backfill_weight is one request's cost in the venue's REST weight.
    no_backfill: ClassVar[str | None] = "the venue has no trade history over REST"
    backfill_weight: ClassVar[int] = 1
    rest_weight_per_min: ClassVar[int] = 600  # the share of the venue's per-IP REST limit backfill may use
    depth_snapshot_weight: ClassVar[int] = 1  # one REST book snapshot's cost in that budget (depth_snapshot_url)

    def __init__(
        self,
        symbols: list[str],
        heartbeat_s: float | None = None,
        *,
        ws_url: str | None = None,
        testnet: bool = False,
        rest_url: str | None = None,
    ) -> None:
        if not symbols:
            raise ValueError(f"{self.name}: no symbols given")
        self.symbols = list(dict.fromkeys(symbols))
        self.counters: Counter[str] = Counter()
        self.rest_budget = RestBudget(self.rest_weight_per_min)
        if heartbeat_s is not None:
            self.heartbeat_s = heartbeat_s
        # None: no REST calls at all (a venue without REST, or a --ws-url without --rest-url)
        self.rest_root = self.rest_root_for(rest_url, ws_url, testnet) if self.has_rest else None

    rest_root: str | None = None
    # Full order books (ops.raw_book_depth): None until configure_depth(); adapters built without it
    # (tests, benches) subscribe no depth streams.
    depth: DepthSampler | None = None

    def configure_depth(self, config: DepthConfig) -> None:
        """Keep full books for every symbol and sample them; call before routes()."""
        self.depth = DepthSampler(self.name, config)

    # -- depth books: the adapter keeps them in sync; these are the seams the runtime uses -----------

    def depth_resync(self, symbol: str) -> list[bytes]:
        """Frames that make the venue send a fresh snapshot of the symbol's book on the connection that
        carries it (WebSocket venues: unsubscribe + subscribe); [] for venues whose snapshot is a REST
        request (depth_snapshot_url)."""
        return []

    def depth_snapshot_url(self, symbol: str) -> str | None:
        """The REST request for the symbol's book snapshot, for venues that take it over REST (Binance)."""
        return None

    def parse_depth_snapshot(self, symbol: str, body: bytes, recv_ts: datetime) -> Parsed:
        """Applies a REST snapshot to the symbol's book (rows: a sample, gaps). Raises ValueError for an answer
        that is not the venue's format."""
        raise NotImplementedError(f"{self.name} takes no REST snapshots")

    def depth_break(
        self,
        book: DepthBook,
        symbol: str,
        cause: str,
        recv_ts: datetime,
        *,
        from_id: int | None = None,
        to_id: int | None = None,
    ) -> GapEvent:
        """The book is out of sync (cause 'seq_break', 'checksum' or 'resync'): emptied and not sampled until a
        fresh snapshot; the break is a row in ops.feed_gaps (stream 'depth')."""
        last_ts = book.ts
        book.invalidate()
        self.counters[f"depth.{cause}"] += 1
        return GapEvent(self.name, symbol, "depth", from_id, to_id, None, last_ts, recv_ts, cause, detected_at=recv_ts)

    def depth_sample(self, symbol: str, book: DepthBook, out: Parsed) -> None:
        """After applying an update: the sample due (if any) into `out`; a crossed book is a break and a resync."""
        if self.depth is None:
            return
        try:
            row = self.depth.after_update(symbol, book)
        except CrossedBook:
            out.rows.append(self.depth_break(book, symbol, "resync", book.recv_ts or book.ts))
            out.resync.append(symbol)
            book.resyncing = True
            return
        if row is not None:
            out.rows.append(row)

    def depth_tick(self, now: datetime) -> list[Row]:
        """Called by the runtime about once a second: samples of books that changed but got no later update
        to be sampled with; a crossed book found here is recorded, and resynced when its next frame comes."""
        if self.depth is None:
            return []
        rows, crossed = self.depth.flush(now)
        out: list[Row] = list(rows)
        for symbol in crossed:
            out.append(GapEvent(self.name, symbol, "depth", None, None, None, None, now, "resync", detected_at=now))
            self.counters["depth.resync"] += 1
        return out

    @classmethod
    def rest_root_for(cls, rest_url: str | None, ws_url: str | None, testnet: bool) -> str | None:
        """The REST root to use: the one given; the testnet's with --testnet; none at all when only the
        WebSocket URL was replaced (where it points says nothing certain about REST: guessing mainnet would
        send a test site's requests to the live venue); else mainnet."""
        if rest_url is not None:
            return rest_url.rstrip("/")
        if testnet:
            return cls.rest_testnet
        return None if ws_url is not None else cls.rest_mainnet

    async def listed_instruments(self, client: httpx.AsyncClient) -> list[ListedInstrument]:
        """Every perpetual the venue lists (its REST instrument list, from `rest_root`). Raises httpx.HTTPError
        or OSError when the venue cannot be reached, ValueError when the answer is not the venue's format."""
        raise NotImplementedError(f"{self.name} has no instrument list")

    @abstractmethod
    def routes(self) -> list[Route]: ...

    @abstractmethod
    def parse(self, frame: str | bytes | bytearray, recv_ts: datetime) -> Parsed: ...

    def polls(self) -> list[Poll]:
        """REST resources to poll; most venues stream everything and have none."""
        return []

    def parse_poll(self, poll: Poll, body: bytes, recv_ts: datetime) -> Parsed:
        raise NotImplementedError(f"{self.name} has no polls")

    def share_rest_budget(self, workers: int) -> None:
        """This adapter's REST polls run in `workers` processes at once: a per-IP budget is split."""
        self.rest_budget.share(workers)

    def backfill_url(self, gap: Gap, cursor: str | None) -> str | None:
        """The REST request for the next page of the gap's trades (cursor None: the first); None when there
        is nothing (more) to ask."""
        return None

    def parse_backfill(self, gap: Gap, body: bytes, recv_ts: datetime) -> BackfillPage:
        """The trades of a history page that fall inside the gap (source 'rest'), and the next cursor.
        Raises ValueError for an answer that is not the venue's format."""
        raise NotImplementedError(f"{self.name}: {self.no_backfill}")

    def poll_pause(self, headers: Mapping[str, str]) -> float:
        """Seconds to hold all polls back after a response, read from the venue's rate-limit headers."""
        return 0.0

    def heartbeat(self) -> bytes | None:
        """An application-level ping, for venues that close connections they hear nothing from."""
        return None

    @abstractmethod
    def instrument(self, symbol: str) -> tuple[str, str]:
        """(asset, quote) of a symbol, for ops.instruments."""

    def contract_size(self, symbol: str) -> float | None:
        """Base units per contract when the venue counts in contracts (OKX); None: sizes are base units."""
        return None

    async def prepare(self, stored_sizes: Mapping[str, float]) -> None:
        """Reads what the adapter needs before connecting (instrument metadata over the venue's REST).
        `stored_sizes` are the contract sizes ops.instruments holds for this venue, the fallback when
        the venue cannot be asked. Never raises: a venue whose metadata cannot be read still connects
        and quarantines what it cannot convert."""
        return None

    def decode(self, frame: str | bytes | bytearray, recv_ts: datetime) -> tuple[object, Parsed | None]:
        """The frame as JSON, or (None, what to return) when it is not JSON: nothing for one of the venue's
        plain-text control frames (`text_controls`), else the quarantine."""
        try:
            return orjson.loads(frame), None
        except orjson.JSONDecodeError:
            if frame in self.text_controls:
                return None, Parsed()
            return None, Parsed([self.reject(recv_ts, None, None, "malformed_json", frame)])

    def validated(
        self, model: type[M], item: object, out: Parsed, recv_ts: datetime, stream: str, symbol: object
    ) -> M | None:
        """One item of a batch message as `model`, or None with its rejection added to `out` (the other
        items of the batch still count)."""
        try:
            return validate(model, item)
        except VALIDATION_ERRORS as exc:
            out.rows.append(self.reject(recv_ts, stream, symbol, validation_reason(exc), orjson.dumps(item)))
            return None

    def reject(
        self, recv_ts: datetime, stream: str | None, symbol: str | None, reason: str, raw: str | bytes
    ) -> Rejection:
        self.counters[f"rejected.{reason.split(':', 1)[0]}"] += 1
        text = bytes(raw).decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
        text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL; keep it visible instead
        return Rejection(recv_ts, self.name, _label(stream), _label(symbol), reason, text)


def rest_answer(response: httpx.Response, model: type[M]) -> M:
    """A REST answer as `model`: httpx.HTTPStatusError for an error status, ValueError naming the model and
    the first problem for a body that is not the venue's format."""
    response.raise_for_status()
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ValueError(f"not a {model.__name__} answer: {validation_reason(exc)}") from None


def _label(value: object) -> str | None:
    """A stream or symbol name for a rejection, whatever the frame put there: a list or a number where a
    name belongs must not make the rejection itself unstorable (one bad row would hold up its batch)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text.replace("\x00", "\\x00")[:100]


def validation_reason(exc: Exception) -> str:
    """A short reason from a pydantic or msgspec ValidationError: 'invalid: p: Input should be greater than
    0', 'invalid: p: Expected `float` > 0.0', 'missing_field: p: Object missing required field'."""
    if isinstance(exc, msgspec.ValidationError):
        return _msgspec_reason(str(exc))
    errors = getattr(exc, "errors", None)
    if errors is None:
        return f"invalid: {exc}"
    first = errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    kind = "missing_field" if first["type"] == "missing" else "invalid"
    return f"{kind}: {where}: {first['msg']}"[:200]


def _msgspec_reason(text: str) -> str:
    """msgspec says 'Expected `float` > 0.0 - at `$.o.q`' or 'Object missing required field `q` - at `$.o`':
    the same shape as pydantic's reasons, the path dotted (`data.0.px`, as pydantic's loc)."""
    what, _, at = text.partition(" - at `")
    path = [p for p in at.rstrip("`").removeprefix("$").replace("[", ".").replace("]", "").split(".") if p]
    kind = "invalid"
    if what.startswith("Object missing required field `"):
        kind, path = "missing_field", [*path, what.split("`")[1]]
        what = "Object missing required field"
    return f"{kind}: {'.'.join(path) or '$'}: {what}"[:200]
