"""One venue's REST allowance, shared by everything that asks its REST (polls, backfill): request weight
per minute as a token bucket, and the pause a rate-limit answer (429/418, a weight header near the limit)
imposes on every caller at once."""

from __future__ import annotations

import asyncio
import time


class RestBudget:
    def __init__(self, weight_per_min: float) -> None:
        if weight_per_min <= 0:
            raise ValueError(f"REST weight per minute must be positive, got {weight_per_min}")
        self.weight_per_min = float(weight_per_min)
        self._tokens = self.weight_per_min
        self._at = time.monotonic()
        self._paused_until = 0.0
        self.spent = 0.0  # weight taken since start, by every caller

    def pause(self, seconds: float) -> None:
        """Nobody asks this venue's REST for `seconds` (a later, shorter pause does not shorten it)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def paused_s(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def share(self, workers: int) -> None:
        """The allowance is per IP: `workers` processes on one address each take their part."""
        self.weight_per_min = max(1.0, self.weight_per_min / workers)
        self._tokens = min(self._tokens, self.weight_per_min)

    async def spend(self, weight: float) -> None:
        """Waits until `weight` fits in the budget and no pause holds, then takes it."""
        while True:
            now = time.monotonic()
            self._tokens = min(self.weight_per_min, self._tokens + (now - self._at) * self.weight_per_min / 60)
            self._at = now
            wait = max(self.paused_s(), (weight - self._tokens) * 60 / self.weight_per_min)
            if wait <= 0:
                self._tokens -= weight
                self.spent += weight
                return
            await asyncio.sleep(wait)
