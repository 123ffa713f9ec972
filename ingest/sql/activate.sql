-- Instruments whose first trade or book row an ingest process just committed become active, unless a user
-- deactivated them (`tower instruments deactivate` wins over arriving data until `activate`).
-- $1 venues, $2 symbols, $3 assets, $4 quotes, $5 contract sizes (NULL: keep / 1), one element per instrument.
INSERT INTO ops.instruments AS i (venue, symbol, asset, quote, contract_size, active, first_data_at)
SELECT d.venue, d.symbol, d.asset, d.quote, coalesce(d.contract_size, 1), true, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[])
     AS d (venue, symbol, asset, quote, contract_size)
ON CONFLICT (venue, symbol) DO UPDATE
SET active = true,
    first_data_at = coalesce(i.first_data_at, excluded.first_data_at),
    deactivated_at = NULL,
    deactivated_by = NULL
WHERE i.deactivated_by IS DISTINCT FROM 'user'
