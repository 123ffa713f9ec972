-- Retention, compression and refresh for the derivatives tables, like the other raw tables.
INSERT INTO ops.policy_settings
    (relation, kind, source, bucket_width, segment_by, order_by,
     retention, compress_after, refresh_every, refresh_start_offset, refresh_end_offset)
VALUES
    ('ops.raw_derivs',       'hypertable', NULL, NULL, 'venue, symbol', 'ts DESC',
     INTERVAL '30 days', INTERVAL '12 hours', NULL, NULL, NULL),
    ('ops.raw_liquidations', 'hypertable', NULL, NULL, 'venue, symbol', 'ts DESC',
     INTERVAL '90 days', INTERVAL '2 days', NULL, NULL, NULL),
    ('ops.derivs_1m',       'cagg', 'ops.raw_derivs', INTERVAL '1 minute', NULL, NULL,
     INTERVAL '90 days', INTERVAL '7 days', INTERVAL '1 minute', INTERVAL '2 hours', INTERVAL '1 minute'),
    ('ops.liquidations_1m', 'cagg', 'ops.raw_liquidations', INTERVAL '1 minute', NULL, NULL,
     INTERVAL '365 days', INTERVAL '7 days', INTERVAL '1 minute', INTERVAL '2 hours', INTERVAL '1 minute')
ON CONFLICT (relation) DO NOTHING;
