"""Ingest spread over worker processes.

One ingest process saturates one core (parsing, WebSocket framing, COPY encoding) at roughly
45k messages/s; the database rarely is the limit. `--processes N` splits every venue's symbols
round-robin over N processes, each with its own connections, writer and spill file. The unique keys
on the raw tables make their writes independent: no coordination is needed between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
from dataclasses import replace

from ingest.service import NEVER_CONNECTED
from ingest.settings import IngestSettings, VenueConfig
from ingest.venues import make_venue
from tower import eventloop

log = logging.getLogger("ingest")


def split(configs: list[VenueConfig], n: int) -> list[list[VenueConfig]]:
    """Each venue's symbols round-robin over n groups; a group left without symbols is dropped."""
    groups: list[list[VenueConfig]] = [[] for _ in range(n)]
    for config in configs:
        for i in range(n):
            symbols = config.symbols[i::n]
            if symbols:
                groups[i].append(config.model_copy(update={"symbols": symbols}))
    return [g for g in groups if g]


def _worker(
    dsn: str,
    configs: list[dict],
    duration_s: float | None,
    index: int,
    log_level: str,
    metrics_port: int | None,
    workers: int = 1,
) -> None:
    from ingest.service import ingest, tune_gc
    from tower.metrics import serve as serve_metrics

    logging.basicConfig(
        level=log_level, stream=sys.stderr, format=f"%(asctime)s %(levelname)s %(name)s[p{index}] %(message)s"
    )
    settings = IngestSettings()
    venues = [make_venue(VenueConfig.model_validate(c), settings) for c in configs]
    for v in venues:  # a REST weight budget is per IP: the workers share it
        v.share_rest_budget(workers)
    names = "-".join(v.name for v in venues)
    tune_gc()
    serve_metrics(metrics_port + index if metrics_port else None)  # worker i: port + i
    result = eventloop.run(
        ingest(
            dsn,
            venues,
            duration_s=duration_s,
            runtime_for=lambda v: replace(settings.runtime_config(v), conn_tag=f"-p{index}"),
            writer_config=settings.writer_config(f"ingest-{names}-p{index}"),
        )
    )
    sys.exit(3 if not result.fully_written else NEVER_CONNECTED if result.never_connected else 0)


async def ingest_processes(
    dsn: str, configs: list[VenueConfig], processes: int, duration_s: float | None, metrics_port: int | None = None
) -> int:
    """Runs the groups in worker processes until they end; returns the worst exit code."""
    groups = split(configs, processes)
    ctx = multiprocessing.get_context("spawn")
    level = logging.getLevelName(logging.getLogger().level)
    workers = [
        ctx.Process(
            target=_worker,
            name=f"ingest-p{i}",
            args=(dsn, [c.model_dump() for c in group], duration_s, i, level, metrics_port, len(groups)),
        )
        for i, group in enumerate(groups)
    ]
    for i, (worker, group) in enumerate(zip(workers, groups, strict=True)):
        worker.start()
        log.info("worker p%d (pid %d): %s", i, worker.pid, "; ".join(f"{c.name} {','.join(c.symbols)}" for c in group))
    loop = asyncio.get_running_loop()

    def stop_workers() -> None:
        # Each worker flushes what it holds on SIGTERM before it exits.
        for worker in workers:
            if worker.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.terminate()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop_workers)
    try:
        codes = [await loop.run_in_executor(None, _join, w) for w in workers]
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    bad = [(w.name, c) for w, c in zip(workers, codes, strict=True) if c]
    for name, code in bad:
        log.error("%s exited with code %s", name, code)
    if not bad:
        return 0
    codes = {code for _, code in bad}
    return 3 if 3 in codes else NEVER_CONNECTED if codes == {NEVER_CONNECTED} else 1


def _join(worker: multiprocessing.Process) -> int | None:
    worker.join()
    return worker.exitcode
