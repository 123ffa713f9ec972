"""A commit that lands while an activation is being written must not leave the activation task awake with
nothing to do: it would spin on the set event and hold the whole event loop (ingest stopped, 100 % CPU)."""

from __future__ import annotations

from ingest.activation import Activation
from ingest.venues.binance import Binance
from ingest.writer import Batch


def _batch(symbol: str) -> Batch:
    return Batch(records={"raw_trades": [("binance", symbol)]}, rows=1)


async def test_commits_during_an_activation_write_leave_nothing_to_wake_for(db_dsn, conn):
    act = Activation(db_dsn, [Binance(["BTCUSDT", "ETHUSDT"])])
    act.on_commit(_batch("BTCUSDT"), 0.0)
    write = act._write

    async def write_while_more_btc_arrives(keys):
        act.on_commit(_batch("BTCUSDT"), 0.0)  # more rows of the instrument being activated, ETH still waiting
        await write(keys)

    act._write = write_while_more_btc_arrives
    await act.flush()  # what run() does after each wake-up
    assert act.activated == {("binance", "BTCUSDT")} and not act.pending
    assert not act._wake.is_set()  # else run() would wake at once, find nothing, and spin
    assert await conn.fetchval("SELECT active FROM ops.instruments WHERE venue = 'binance' AND symbol = 'BTCUSDT'")
