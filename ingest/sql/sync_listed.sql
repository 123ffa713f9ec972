-- One venue's instrument list into ops.instruments: every listed perpetual inserted (inactive: activation
-- waits for data) or updated with asset, quote, contract size, tick size and the venue's status.
-- $1 venue; $2..$7 symbols, assets, quotes, contract sizes, tick sizes, statuses (one element each).
INSERT INTO ops.instruments AS i (venue, symbol, asset, quote, contract_size, tick_size, status, synced_at, active)
SELECT $1, d.symbol, d.asset, d.quote, d.contract_size, d.tick_size, d.status, now(), false
FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::text[])
     AS d (symbol, asset, quote, contract_size, tick_size, status)
ON CONFLICT (venue, symbol) DO UPDATE
SET asset = excluded.asset, quote = excluded.quote, contract_size = excluded.contract_size,
    tick_size = excluded.tick_size, status = excluded.status, synced_at = excluded.synced_at
