-- `tower instruments list`: every instrument with its listing facts and the age of its newest trade or book
-- row (through the (venue, symbol, ...) indexes: one index probe per instrument and table).
-- $1 venue or NULL for all.
SELECT i.venue, i.symbol, i.asset, i.quote, i.contract_size, i.tick_size, i.status, i.active, i.deactivated_by,
       extract(epoch FROM now() - greatest(t.recv_ts, b.recv_ts))::float8 AS last_data_age_s
FROM ops.instruments i
LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_trades r WHERE r.venue = i.venue AND r.symbol = i.symbol
                   ORDER BY ts DESC LIMIT 1) t ON true
LEFT JOIN LATERAL (SELECT recv_ts FROM ops.raw_book_l1 r WHERE r.venue = i.venue AND r.symbol = i.symbol
                   ORDER BY ts DESC LIMIT 1) b ON true
WHERE $1::text IS NULL OR i.venue = $1
ORDER BY i.venue, i.symbol
