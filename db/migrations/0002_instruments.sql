-- One row per venue symbol; `asset` is what lets Binance BTCUSDT and Hyperliquid BTC be compared.
CREATE TABLE ops.instruments (
    venue          text NOT NULL,
    symbol         text NOT NULL,
    asset          text NOT NULL,
    quote          text NOT NULL,
    kind           text NOT NULL DEFAULT 'perp',
    contract_size  double precision NOT NULL DEFAULT 1,  -- base units per contract (OKX swaps differ)
    active         boolean NOT NULL DEFAULT true,
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol),
    CONSTRAINT instruments_kind CHECK (kind IN ('perp', 'future', 'spot')),
    CONSTRAINT instruments_contract_size CHECK (contract_size > 0)
);
CREATE INDEX instruments_asset ON ops.instruments (asset);

INSERT INTO ops.instruments (venue, symbol, asset, quote) VALUES
    ('binance', 'BTCUSDT', 'BTC', 'USDT'),
    ('binance', 'ETHUSDT', 'ETH', 'USDT'),
    ('binance', 'SOLUSDT', 'SOL', 'USDT'),
    ('hyperliquid', 'BTC', 'BTC', 'USD'),
    ('hyperliquid', 'ETH', 'ETH', 'USD'),
    ('hyperliquid', 'SOL', 'SOL', 'USD')
ON CONFLICT DO NOTHING;
