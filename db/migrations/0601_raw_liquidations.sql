-- Forced orders. side = the liquidation order's side: 'sell' closes a long, 'buy' closes a short.
CREATE TABLE ops.raw_liquidations (
    venue    text NOT NULL,
    symbol   text NOT NULL,
    ts       timestamptz NOT NULL,
    recv_ts  timestamptz NOT NULL,
    side     text NOT NULL,
    price    double precision NOT NULL,
    qty      double precision NOT NULL,
    CONSTRAINT raw_liquidations_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT raw_liquidations_positive CHECK (price > 0 AND qty > 0)
);
SELECT create_hypertable('ops.raw_liquidations', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
CREATE INDEX raw_liquidations_venue_symbol_ts ON ops.raw_liquidations (venue, symbol, ts DESC);
