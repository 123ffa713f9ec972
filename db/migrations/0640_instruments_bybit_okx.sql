-- Bybit linear and OKX swap instruments, so cross-venue views group all four venues by asset.
-- OKX counts in contracts: contract_size is ctVal (base coin per contract) from OKX's instrument list;
-- `tower ingest okx` re-reads it from the venue at start and updates it here.
-- Seeded inactive: scoring and alerts cover what is ingested, and ingesting a symbol activates it.
INSERT INTO ops.instruments (venue, symbol, asset, quote, contract_size, active) VALUES
    ('bybit', 'BTCUSDT', 'BTC', 'USDT', 1, false),
    ('bybit', 'ETHUSDT', 'ETH', 'USDT', 1, false),
    ('bybit', 'SOLUSDT', 'SOL', 'USDT', 1, false),
    ('okx', 'BTC-USDT-SWAP', 'BTC', 'USDT', 0.01, false),
    ('okx', 'ETH-USDT-SWAP', 'ETH', 'USDT', 0.1, false),
    ('okx', 'SOL-USDT-SWAP', 'SOL', 'USDT', 1, false)
ON CONFLICT DO NOTHING;
