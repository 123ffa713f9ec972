-- What an ingest process is about to read, registered inactive (activation waits for data): features join
-- on ops.instruments for the asset. A contract size read from the venue replaces the stored one.
-- $1 venue, $2 symbol, $3 asset, $4 quote, $5 contract size (NULL: keep / 1).
INSERT INTO ops.instruments (venue, symbol, asset, quote, contract_size, active)
VALUES ($1, $2, $3, $4, coalesce($5::float8, 1), false)
ON CONFLICT (venue, symbol) DO UPDATE
SET contract_size = coalesce($5::float8, ops.instruments.contract_size)
