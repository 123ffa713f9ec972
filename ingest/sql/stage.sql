-- A per-session staging twin of one raw table; ON COMMIT DELETE ROWS empties it after every batch.
CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE ops.{table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
