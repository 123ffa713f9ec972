-- Every trade print as the venue reported it. ts = venue event time, recv_ts = local receive time,
-- side = aggressor side.
CREATE TABLE ops.raw_trades (
    venue     text NOT NULL,
    symbol    text NOT NULL,
    ts        timestamptz NOT NULL,
    recv_ts   timestamptz NOT NULL,
    trade_id  text,
    price     double precision NOT NULL,
    qty       double precision NOT NULL,
    side      text NOT NULL,
    CONSTRAINT raw_trades_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT raw_trades_positive CHECK (price > 0 AND qty > 0)
);
-- 1-hour chunks keep the live chunk's indexes small at tens of thousands of rows per second.
SELECT create_hypertable('ops.raw_trades', by_range('ts', INTERVAL '1 hour'), create_default_indexes => false);
CREATE INDEX raw_trades_venue_symbol_ts ON ops.raw_trades (venue, symbol, ts DESC);
