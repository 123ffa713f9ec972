-- Rows already stored (a replay, an overlap) hit the table's dedup index and are skipped.
INSERT INTO ops.{table} ({columns}) SELECT {columns} FROM stage_{table} ON CONFLICT DO NOTHING
