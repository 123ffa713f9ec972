"""A simulated depth book around a market's quote, for the demo's venues that serve depth: levels 1 bps apart
on the tick grid, each price's size fixed by the price itself, so consecutive books differ only where the quote
moved (a venue's diffs stay small, as real ones are)."""

from __future__ import annotations

from ingest.sim.market import Market

LEVELS = 40  # per side: 1 bps apart, so the book reaches about 40 bps


def ladder(m: Market, bid: float, bid_qty: float, ask: float, ask_qty: float) -> tuple[dict, dict]:
    """(bids, asks) as price -> size (floats), best level from the quote, the rest behind it."""
    spacing = max(1, round(m.mid * 1e-4 / m.tick)) * m.tick
    bids, asks = {bid: bid_qty}, {ask: ask_qty}
    for k in range(1, LEVELS):
        for side, price in ((bids, bid - k * spacing), (asks, ask + k * spacing)):
            if price > 0:
                side[price] = _resting(m, price)
    return bids, asks


def _resting(m: Market, price: float) -> float:
    """A size that depends only on the price level: 0.5x-1.5x of about 10,000 quote currency."""
    step = round(price / m.tick)
    return round((0.5 + (step * 2654435761 % 1000) / 1000) * 10_000 / m.mid, 6) or 0.001
