-- Derivatives context per venue symbol: mark, index, funding and open interest, as the venue
-- reported them (one channel may carry only some fields: the others stay NULL).
CREATE TABLE ops.raw_derivs (
    venue             text NOT NULL,
    symbol            text NOT NULL,
    ts                timestamptz NOT NULL,
    recv_ts           timestamptz NOT NULL,
    mark_px           double precision,
    index_px          double precision,
    funding_rate      double precision,      -- per funding_interval, as a fraction (0.0001 = 1 bp)
    funding_interval  interval,              -- Binance 8 h, Hyperliquid 1 h
    next_funding_ts   timestamptz,
    open_interest     double precision,      -- base units
    CONSTRAINT raw_derivs_positive CHECK ((mark_px IS NULL OR mark_px > 0) AND (index_px IS NULL OR index_px > 0)
                                          AND (open_interest IS NULL OR open_interest >= 0)
                                          AND (funding_interval IS NULL OR funding_interval > INTERVAL '0'))
);
SELECT create_hypertable('ops.raw_derivs', by_range('ts', INTERVAL '6 hours'), create_default_indexes => false);
CREATE INDEX raw_derivs_venue_symbol_ts ON ops.raw_derivs (venue, symbol, ts DESC);
