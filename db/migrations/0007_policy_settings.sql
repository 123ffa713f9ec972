-- The one place retention, compression and refresh settings live, under both licenses.
-- `tower policies set` (or UPDATE + SELECT ops.apply_policies()) changes them; apply_policies()
-- turns them into TimescaleDB jobs under TSL, and ops.enforce_retention() into drop_chunks under Apache.
CREATE TABLE ops.policy_settings (
    relation              text PRIMARY KEY,       -- schema-qualified, e.g. ops.raw_trades
    kind                  text NOT NULL,          -- hypertable | cagg
    source                text,                   -- for caggs: the relation aggregated
    bucket_width          interval,               -- for caggs
    segment_by            text,                   -- compression segmentby (hypertables)
    order_by              text,                   -- compression orderby (hypertables)
    retention             interval,               -- drop chunks older than this; NULL = keep
    compress_after        interval,               -- compress chunks older than this; NULL = never
    refresh_every         interval,               -- caggs: refresh policy schedule
    refresh_start_offset  interval,               -- caggs: refresh window start (max lateness)
    refresh_end_offset    interval,               -- caggs: refresh window end
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policy_settings_kind CHECK (kind IN ('hypertable', 'cagg')),
    CONSTRAINT policy_settings_positive CHECK (
        (retention IS NULL OR retention > INTERVAL '0')
        AND (compress_after IS NULL OR compress_after > INTERVAL '0')
        AND (refresh_every IS NULL OR refresh_every > INTERVAL '0'))
);

INSERT INTO ops.policy_settings
    (relation, kind, source, bucket_width, segment_by, order_by,
     retention, compress_after, refresh_every, refresh_start_offset, refresh_end_offset)
VALUES
    ('ops.raw_trades',        'hypertable', NULL, NULL, 'venue, symbol', 'ts DESC',
     INTERVAL '30 days', INTERVAL '2 hours', NULL, NULL, NULL),
    ('ops.raw_book_l1',       'hypertable', NULL, NULL, 'venue, symbol', 'ts DESC',
     INTERVAL '7 days', INTERVAL '2 hours', NULL, NULL, NULL),
    ('ops.rejected_messages', 'hypertable', NULL, NULL, 'venue', 'recv_ts DESC',
     INTERVAL '14 days', NULL, NULL, NULL, NULL),
    ('ops.connection_events', 'hypertable', NULL, NULL, 'venue', 'ts DESC',
     INTERVAL '90 days', NULL, NULL, NULL, NULL),
    ('ops.risk_scores',       'hypertable', NULL, NULL, 'venue, symbol', 'bucket DESC',
     INTERVAL '180 days', INTERVAL '7 days', NULL, NULL, NULL),
    ('ops.book_1m',   'cagg', 'ops.raw_book_l1', INTERVAL '1 minute', NULL, NULL,
     INTERVAL '90 days', INTERVAL '7 days', INTERVAL '1 minute', INTERVAL '2 hours', INTERVAL '1 minute'),
    ('ops.trades_1m', 'cagg', 'ops.raw_trades', INTERVAL '1 minute', NULL, NULL,
     INTERVAL '90 days', INTERVAL '7 days', INTERVAL '1 minute', INTERVAL '2 hours', INTERVAL '1 minute'),
    ('ops.book_1h',   'cagg', 'ops.book_1m', INTERVAL '1 hour', NULL, NULL,
     INTERVAL '730 days', INTERVAL '30 days', INTERVAL '15 minutes', INTERVAL '1 day', INTERVAL '1 hour'),
    ('ops.trades_1h', 'cagg', 'ops.trades_1m', INTERVAL '1 hour', NULL, NULL,
     INTERVAL '730 days', INTERVAL '30 days', INTERVAL '15 minutes', INTERVAL '1 day', INTERVAL '1 hour')
ON CONFLICT (relation) DO NOTHING;
