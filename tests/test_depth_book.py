"""The liquidity figures a desk reads off a book: notional within bps of mid, slippage of a standard order,
how far the held book reaches, and that a crossed or unsynced book is never sampled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.depth import CrossedBook, DepthBook, DepthConfig, DepthSampler, measure

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

# mid = 100.0: bids 99.95 (5 bps), 99.8 (20 bps), 99.6 (40 bps), 99.0 (100 bps), 98.0 (200 bps)
BIDS = [(99.95, 10.0), (99.8, 20.0), (99.6, 5.0), (99.0, 100.0), (98.0, 1000.0)]
# asks 100.05 (5 bps), 100.2 (20 bps), 100.3 (30 bps), 101.0 (100 bps), 101.5 (150 bps)
ASKS = [(100.05, 4.0), (100.2, 10.0), (100.3, 50.0), (101.0, 2.0), (101.5, 3.0)]


def test_bands_hold_the_notional_within_each_distance_of_mid():
    f = measure(BIDS, ASKS, notional=1_000.0)
    assert f.mid == pytest.approx(100.0)
    assert f.bid_bands == pytest.approx(
        (999.5, 999.5 + 1996.0, 999.5 + 1996.0 + 498.0, 999.5 + 1996.0 + 498.0 + 9900.0)
    )
    assert f.ask_bands == pytest.approx((400.2, 400.2 + 1002.0, 400.2 + 1002.0 + 5015.0, 6417.2 + 202.0))
    assert (f.bid_levels, f.ask_levels) == (5, 5)
    # shorter side: asks reach 150 bps, bids 200 bps
    assert f.reach_bps == pytest.approx(150.0)


def test_slippage_is_the_average_fill_against_mid_and_none_when_the_book_cannot_fill():
    f = measure(BIDS, ASKS, notional=1_000.0)
    # buy 1000: 4 @ 100.05 (400.2), then 599.8 / 100.2 = 5.98603 @ 100.2
    qty = 4.0 + 599.8 / 100.2
    assert f.buy_slip_bps == pytest.approx((1000.0 / qty - 100.0) / 100.0 * 1e4)
    # sell 1000: 999.5 @ 99.95 then 0.5 / 99.8 @ 99.8
    qty = 10.0 + 0.5 / 99.8
    assert f.sell_slip_bps == pytest.approx((100.0 - 1000.0 / qty) / 100.0 * 1e4)
    assert measure(BIDS, ASKS, notional=10_000.0).buy_slip_bps is None  # asks hold 7,121.7
    assert measure(BIDS, ASKS, notional=10_000.0).sell_slip_bps is not None


def _book() -> DepthBook:
    book = DepthBook()
    book.reset(BIDS, ASKS, T0, T0, update_id=1)
    return book


def test_a_diff_replaces_sizes_and_size_zero_removes_a_level():
    book = _book()
    book.apply([(99.95, 0.0), (99.9, 7.0)], [(100.05, 1.5)], T0, T0, update_id=2)
    assert book.sorted_bids(2) == [(99.9, 7.0), (99.8, 20.0)]
    assert book.sorted_asks(1) == [(100.05, 1.5)]
    assert book.update_id == 2


def test_samples_come_at_most_every_sample_s_and_only_after_a_change():
    sampler = DepthSampler("binance", DepthConfig(sample_s=1.0))
    book = sampler.book("BTCUSDT")
    book.reset(BIDS, ASKS, T0, T0)
    assert sampler.after_update("BTCUSDT", book) is not None
    later = T0 + timedelta(seconds=0.5)
    book.apply([(99.9, 1.0)], [], later, later)
    assert sampler.after_update("BTCUSDT", book) is None  # too soon
    assert sampler.flush(T0 + timedelta(seconds=0.9)) == ([], [])
    rows, crossed = sampler.flush(T0 + timedelta(seconds=1.0))
    assert [r.ts for r in rows] == [later] and crossed == []
    assert sampler.flush(T0 + timedelta(seconds=5)) == ([], [])  # no change since: no sample


def test_a_crossed_book_is_invalidated_never_sampled():
    sampler = DepthSampler("okx", DepthConfig())
    book = sampler.book("BTC-USDT-SWAP")
    book.reset(BIDS, ASKS, T0, T0)
    book.apply([(100.1, 1.0)], [], T0, T0)  # bid above the best ask: a missed update
    with pytest.raises(CrossedBook):
        sampler.after_update("BTC-USDT-SWAP", book)
    assert not book.synced and not book.bids
    assert sampler.after_update("BTC-USDT-SWAP", book) is None  # unsynced until the next snapshot
