"""Prometheus metrics of the ingest process, served on TOWER_METRICS_PORT when it is set.

Counting happens once per batch (in the writer's collector and committer), never per frame on the
connectors' hot path. Gauges that describe the present (queue depth, spill bytes, last message age)
are read when Prometheus scrapes.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from ingest.rows import COLUMNS

if TYPE_CHECKING:
    from ingest.writer import Batch, Writer

# table -> stream label; where venue, recv_ts and the other labelled fields sit in each table's record.
STREAMS = {
    "raw_trades": "trades",
    "raw_book_l1": "book_l1",
    "raw_book_depth": "depth",
    "raw_derivs": "derivs",
    "raw_liquidations": "liquidations",
}
_AT = {table: {column: i for i, column in enumerate(columns)} for table, columns in COLUMNS.items()}
VENUE, RECV_TS = _AT["raw_trades"]["venue"], _AT["raw_trades"]["recv_ts"]
if any((_AT[t]["venue"], _AT[t]["recv_ts"]) != (VENUE, RECV_TS) for t in STREAMS):
    raise RuntimeError("market data tables must share the position of venue and recv_ts")
REJECTION_VENUE, REJECTION_STREAM, REJECTION_REASON = (
    _AT["rejected_messages"][c] for c in ("venue", "stream", "reason")
)
CONNECTION_VENUE, CONNECTION_EVENT = _AT["connection_events"]["venue"], _AT["connection_events"]["event"]
GAP_VENUE = _AT["feed_gaps"]["venue"]

RECEIVED = PromCounter(
    "tower_ingest_messages_received_total",
    "Market data rows accepted from the venues into the writer",
    ["venue", "stream"],
)
WRITTEN = PromCounter(
    "tower_ingest_messages_written_total", "Market data rows committed to the database", ["venue", "stream"]
)
REJECTED = PromCounter(
    "tower_ingest_messages_rejected_total",
    "Frames or rows quarantined in ops.rejected_messages",
    ["venue", "stream", "reason"],
)
RECONNECTS = PromCounter("tower_ingest_reconnects_total", "Reconnect attempts", ["venue"])
GAPS = PromCounter("tower_ingest_gaps_total", "Gaps detected in venue feeds", ["venue"])
# The overload policy (writer.py), one counter or gauge per step.
BOOK_CONFLATED = PromCounter(
    "tower_ingest_book_l1_conflated_total",
    "L1 book updates not stored because a newer one of the same symbol replaced them (writer overloaded)",
    ["venue"],
)
SPILLED = PromCounter("tower_ingest_spilled_rows_total", "Rows written to the spill file (database away)")
READER_PAUSES = PromCounter(
    "tower_ingest_reader_pauses_total", "Times a connection stopped reading its socket: writer full", ["venue"]
)
READER_PAUSED_SECONDS = PromCounter(
    "tower_ingest_reader_paused_seconds_total",
    "Seconds connections spent not reading their sockets (TCP backpressure on the venue), ended pauses",
    ["venue"],
)
COMMIT_LATENCY = Histogram(
    "tower_ingest_commit_latency_seconds",
    "Local receive to database commit, per row",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_writers: weakref.WeakSet[Writer] = weakref.WeakSet()
_last_message: dict[str, float] = {}  # venue -> epoch seconds of the newest row received
_paused: Counter[str] = Counter()  # venue -> connections paused now


def reader_paused(venue: str) -> None:
    READER_PAUSES.labels(venue).inc()
    _paused[venue] += 1


def reader_resumed(venue: str, seconds: float) -> None:
    READER_PAUSED_SECONDS.labels(venue).inc(seconds)
    _paused[venue] -= 1


def batch_accepted(batch: Batch) -> None:
    """A batch the collector closed: count what it holds and note each venue's newest message."""
    for table, records in batch.records.items():
        stream = STREAMS.get(table)
        if stream is not None:
            for venue, n in Counter(r[VENUE] for r in records).items():
                RECEIVED.labels(venue, stream).inc(n)
            newest = max(records, key=lambda r: r[RECV_TS])
            venue, ts = newest[VENUE], newest[RECV_TS].timestamp()
            if ts > _last_message.get(venue, 0.0):
                _last_message[venue] = ts
        elif table == "rejected_messages":
            for (venue, stream, reason), n in Counter(
                (r[REJECTION_VENUE], r[REJECTION_STREAM] or "unknown", r[REJECTION_REASON].split(":", 1)[0])
                for r in records
            ).items():
                REJECTED.labels(venue, stream, reason).inc(n)
        elif table == "feed_gaps":
            for venue, n in Counter(r[GAP_VENUE] for r in records).items():
                GAPS.labels(venue).inc(n)
        elif table == "connection_events":
            for r in records:
                if r[CONNECTION_EVENT] == "reconnect_attempt":
                    RECONNECTS.labels(r[CONNECTION_VENUE]).inc()


def batch_committed(batch: Batch, committed_at: float) -> None:
    for table, records in batch.records.items():
        stream = STREAMS.get(table)
        if stream is None:
            continue
        for venue, n in Counter(r[VENUE] for r in records).items():
            WRITTEN.labels(venue, stream).inc(n)
        for r in records[::16]:  # a sample is plenty for a histogram
            COMMIT_LATENCY.observe(max(0.0, committed_at - r[RECV_TS].timestamp()))


def watch(writer: Writer) -> None:
    _writers.add(writer)


class _LiveGauges(Collector):
    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "tower_ingest_writer_queue_depth", "Rows waiting in the writer: queued groups plus pending batches"
        )
        depth.add_metric([], sum(w.queued_groups() + w.pending_rows for w in list(_writers)))
        yield depth
        spill = GaugeMetricFamily("tower_ingest_spill_bytes", "Bytes of rows waiting in spill files")
        spill.add_metric([], sum(w.spill_bytes() for w in list(_writers)))
        yield spill
        budget = GaugeMetricFamily(
            "tower_ingest_spill_budget_bytes", "Disk budget of the spill files (TOWER_INGEST_SPILL_MAX_MB)"
        )
        budget.add_metric([], sum(w.config.spill_max_bytes for w in list(_writers)))
        yield budget
        backlog = GaugeMetricFamily("tower_ingest_writer_backlog_rows", "Rows queued or batched, not yet committed")
        backlog.add_metric([], sum(w.backlog_rows() for w in list(_writers)))
        yield backlog
        overloaded = GaugeMetricFamily(
            "tower_ingest_writer_overloaded",
            "Writers overloaded now (backlog above TOWER_INGEST_OVERLOAD_ROWS): L1 book conflated",
        )
        overloaded.add_metric([], sum(w.overloaded for w in list(_writers)))
        yield overloaded
        paused = GaugeMetricFamily(
            "tower_ingest_readers_paused", "Connections not reading their sockets now (writer full)", labels=["venue"]
        )
        for venue, n in sorted(_paused.items()):
            paused.add_metric([venue], n)
        yield paused
        age = GaugeMetricFamily(
            "tower_ingest_last_message_age_seconds",
            "Seconds since the newest market data row of each venue was received",
            labels=["venue"],
        )
        now = time.time()
        for venue, ts in sorted(_last_message.items()):
            age.add_metric([venue], max(0.0, now - ts))
        yield age


REGISTRY.register(_LiveGauges())
