"""Plausible simulated markets: a random-walk mid, venue-typical spreads, Poisson trades with bursts, and
the derivatives context around them (mark premium over the index, funding, open interest, liquidations
that cluster in bursts on the side the market moved against)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Market:
    symbol: str
    mid: float
    tick: float  # price increment; the spread is a few ticks
    vol_per_s: float = 4e-4  # relative volatility per sqrt(second)
    trades_per_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    burst_left_s: float = 0.0
    anchor: Market | None = None  # the same asset on another venue: arbitrage keeps the two close
    pull_per_s: float = 5.0  # deviations decay within a second: a few bps apart, as on real venues
    funding_8h: float = 0.0001  # per 8 h, as a fraction: the 0.01 % most perps sit at
    premium_bps: float = 1.0  # mark over index
    open_interest: float = 0.0  # base units; set from the mid on first use
    last_return: float = 0.0

    def step(self, dt: float) -> None:
        before = self.mid
        self.mid *= math.exp(self.rng.gauss(0, self.vol_per_s * math.sqrt(dt)))
        if self.anchor is not None:
            self.mid += (self.anchor.mid - self.mid) * min(1.0, self.pull_per_s * dt)
        self.last_return = math.log(self.mid / before)
        if self.burst_left_s > 0:
            self.burst_left_s -= dt
        elif self.rng.random() < dt / 45:  # a burst roughly every 45 s
            self.burst_left_s = self.rng.uniform(1, 4)

    def quote(self) -> tuple[float, float, float, float]:
        """(bid, bid_qty, ask, ask_qty) around the mid, rounded to the tick."""
        half = self.tick * self.rng.choice((1, 1, 1, 2, 3)) / 2
        bid = math.floor((self.mid - half) / self.tick) * self.tick
        ask = max(bid + self.tick, math.ceil((self.mid + half) / self.tick) * self.tick)
        return bid, self.size(), ask, self.size()

    def size(self) -> float:
        return round(self.rng.lognormvariate(0, 1.2) * 10_000 / self.mid, 6) or 0.001

    def trades(self, dt: float) -> list[tuple[str, float, float]]:
        """(side, price, qty) printed during dt; the aggressor lifts the ask or hits the bid."""
        rate = self.trades_per_s * (12 if self.burst_left_s > 0 else 1)
        n = _poisson(self.rng, rate * dt)
        bid, _, ask, _ = self.quote()
        out = []
        for _ in range(n):
            side = "buy" if self.rng.random() < 0.5 else "sell"
            out.append((side, ask if side == "buy" else bid, self.size()))
        return out

    def derivs_step(self, dt: float) -> None:
        """Funding and premium mean-revert with noise; open interest drifts, and drops in bursts."""
        self.funding_8h += (0.0001 - self.funding_8h) * min(1.0, dt / 600) + self.rng.gauss(0, 2e-6 * math.sqrt(dt))
        self.premium_bps += (1.0 - self.premium_bps) * min(1.0, dt / 5) + self.rng.gauss(0, 0.8 * math.sqrt(dt))
        if not self.open_interest:
            self.open_interest = round(2e9 / self.mid, 3)
        drift = -0.002 if self.burst_left_s > 0 else 0.0
        self.open_interest *= math.exp(drift * dt + self.rng.gauss(0, 5e-4 * math.sqrt(dt)))

    def mark_index(self) -> tuple[float, float]:
        index = self.mid / (1 + self.premium_bps / 1e4)
        return self.mid, index

    def liquidations(self, dt: float) -> list[tuple[str, float, float]]:
        """(forced order side, price, qty): longs are sold out when price falls, shorts bought in when it rises."""
        # Sized so a healthy demo market stays under the default liquidation_burst warning (1M a minute)
        # nearly always: the Risk Monitor shows the occasional burst, not a wall of alerts.
        rate = 0.8 if self.burst_left_s > 0 else 0.02
        side = "sell" if self.last_return < 0 else "buy"
        return [
            (side, self.mid, round(self.size() * self.rng.uniform(0.5, 2), 4) or 0.001)
            for _ in range(_poisson(self.rng, rate * dt))
        ]


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


STARTING = {"BTC": (91_000.0, 0.1), "ETH": (3_050.0, 0.01), "SOL": (140.0, 0.001)}


def markets(assets: list[str], seed: int, anchors: dict[str, Market] | None = None) -> dict[str, Market]:
    """One market per asset; with anchors (another venue's markets) each follows its anchor's mid."""
    rng = random.Random(seed)
    return {
        a: Market(
            a,
            STARTING[a][0] * rng.uniform(0.999, 1.001),
            STARTING[a][1],
            rng=random.Random(rng.random()),
            anchor=(anchors or {}).get(a),
        )
        for a in assets
    }
