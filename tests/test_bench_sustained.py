"""The sustained-capacity judgement of `tower bench ingest`: when a paced step passes, and the rate search."""

from __future__ import annotations

from ingest.bench.sustained import StepFigures, Verdict, judge_step, judge_workers, queue_grew, search


def step(**changes) -> StepFigures:
    """A healthy step: everything delivered, nothing spilled, a flat sawtooth backlog, low latency."""
    figures = StepFigures(
        rate=5000,
        sent=100_000,
        committed=100_000,
        spilled_rows=0,
        queue_depths=[0, 4000, 200, 3900, 0, 4100, 100, 4000, 0],
        latencies_ms=[50.0 + i % 100 for i in range(1000)],
        batch_rows=5000,
    )
    for name, value in changes.items():
        setattr(figures, name, value)
    return figures


def test_a_healthy_step_passes_with_its_p99():
    verdict = judge_step(step())
    assert verdict.passed and verdict.reasons == []
    assert 145 <= verdict.p99_ms <= 150


def test_any_spilled_row_fails_the_step():
    verdict = judge_step(step(spilled_rows=1))
    assert not verdict.passed
    assert verdict.reasons == ["1 rows spilled"]


def test_a_growing_writer_queue_fails_the_step_but_its_sawtooth_does_not():
    growing = [0, 5000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000]
    verdict = judge_step(step(queue_depths=growing))
    assert not verdict.passed
    assert verdict.reasons == ["writer queue grew from 5,000 to 35,000 rows"]
    # Growth within one batch is the sawtooth of a writer that keeps up.
    assert queue_grew([0, 1000, 0, 2000, 3000, 4000], 5000)[0] is False
    assert queue_grew([0, 1000, 0, 2000, 6000, 6001], 5000)[0] is True
    assert queue_grew([], 5000)[0] is False


def test_p99_over_one_second_fails_the_step():
    slow = [100.0] * 98 + [1500.0, 1600.0]
    verdict = judge_step(step(latencies_ms=slow))
    assert not verdict.passed and verdict.p99_ms > 1000
    assert verdict.reasons[0].startswith("p99 receive -> commit ")
    assert judge_step(step(latencies_ms=[1000.0])).passed  # the limit itself passes
    assert judge_step(step(latencies_ms=[])).reasons == ["no commits were measured"]


def test_frames_not_delivered_in_time_fail_the_step():
    verdict = judge_step(step(committed=90_000))
    assert verdict.reasons == ["only 90,000 of 100,000 frames delivered in time"]


def test_a_step_of_several_workers_passes_only_if_each_does():
    both = judge_workers([step(), step(latencies_ms=[300.0])])
    assert both.passed and both.p99_ms == 300.0  # the worst worker's p99
    one_spilled = judge_workers([step(), step(spilled_rows=10)])
    assert not one_spilled.passed and one_spilled.reasons == ["worker 1: 10 rows spilled"]


def capacity(limit: float):
    tried: list[float] = []

    async def try_rate(rate: float) -> Verdict:
        tried.append(rate)
        return Verdict(rate <= limit, [] if rate <= limit else ["too fast"], rate / 100)

    return tried, try_rate


async def test_the_search_doubles_until_a_fail_then_bisects_to_the_precision():
    tried, try_rate = capacity(52_000)
    rate, verdict = await search(5000, 160_000, 0.1, try_rate)
    assert tried[:6] == [5000, 10_000, 20_000, 40_000, 80_000, 60_000]
    assert tried[6:] == [50_000, 55_000]  # 50k passes, 55k fails: within 10 % of 50k
    assert rate == 50_000 and verdict is not None and verdict.p99_ms == 500  # the figures of the passing step


async def test_the_search_stops_at_the_cap_and_reports_zero_when_the_first_step_fails():
    tried, try_rate = capacity(1e9)
    assert (await search(5000, 30_000, 0.1, try_rate))[0] == 30_000
    assert tried == [5000, 10_000, 20_000, 30_000]
    tried, try_rate = capacity(1000)
    assert await search(5000, 30_000, 0.1, try_rate) == (0.0, None)
    assert tried == [5000]
