-- Exactly-once storage for derivatives rows, as 0300 does for trades and books: the writer's retry
-- and spill-replay path inserts through these keys with ON CONFLICT DO NOTHING.
-- A derivs row has no id; one venue/symbol/venue-time with the same values and receive time is one
-- message (receive time tells apart two channels of one venue that share a timestamp).
CREATE UNIQUE INDEX raw_derivs_dedup ON ops.raw_derivs
    (venue, symbol, ts, recv_ts, mark_px, index_px, funding_rate, open_interest) NULLS NOT DISTINCT;

-- Liquidations carry no id on any venue; the same order side, price and size at the same venue
-- millisecond is the same forced order (reconnect snapshots repeat them).
CREATE UNIQUE INDEX raw_liquidations_dedup ON ops.raw_liquidations (venue, symbol, ts, side, price, qty);
