"""The scripted market of the jobs tests: quiet minutes with a Binance BTCUSDT spread blow-out."""

from __future__ import annotations

from datetime import timedelta

from tests.support.fixtures import T0
from tests.support.market import Quote, write_market
from tower.cagg_refresh import refresh_feature_caggs

M = timedelta(minutes=1)
BLOWOUT = range(30, 35)  # minutes with a wide Binance BTCUSDT spread


def after(n: int):
    """A wall clock at which minute n has closed (and settled): the pass then evaluates up to n."""
    return T0 + (n + 1) * M + timedelta(seconds=30)


def spread_blowout(venue, symbol, m, q: Quote):
    if (venue, symbol) == ("binance", "BTCUSDT") and m in BLOWOUT:
        return Quote(mid=q.mid, spread_bps=4.0, qty=q.qty)  # ~3x the quiet 1.0-1.5 bps: robust z ~ 11
    return q


async def prepare(conn, minutes, shape):
    # The scenario lives at a fixed past time; keep retention (wall-clock based) from dropping it.
    await conn.execute("UPDATE ops.policy_settings SET retention = NULL WHERE kind = 'hypertable'")
    await write_market(conn, minutes, shape)
    await refresh_feature_caggs(conn, T0, T0 + minutes * M)
