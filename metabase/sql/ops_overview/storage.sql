-- Size and compression per hypertable and continuous aggregate. The size and compression-stats functions
-- exist under both licenses (under Apache nothing is compressed, so the ratio stays empty);
-- timescaledb_information.continuous_aggregates is empty under Apache, where features are plain views.
WITH rels AS (
    SELECT format('%I.%I', h.hypertable_schema, h.hypertable_name) AS relation,
           'hypertable' AS kind,
           format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass AS storage,
           h.num_chunks
    FROM timescaledb_information.hypertables h
    UNION ALL
    SELECT format('%I.%I', ca.view_schema, ca.view_name),
           'continuous aggregate',
           format('%I.%I', ca.materialization_hypertable_schema, ca.materialization_hypertable_name)::regclass,
           (SELECT count(*) FROM timescaledb_information.chunks ch
            WHERE ch.hypertable_schema = ca.materialization_hypertable_schema
              AND ch.hypertable_name = ca.materialization_hypertable_name)
    FROM timescaledb_information.continuous_aggregates ca
)
SELECT
    r.relation,
    r.kind,
    r.num_chunks                                                       AS chunks,
    coalesce(cs.compressed_chunks, 0)                                  AS compressed_chunks,
    round(hypertable_size(r.storage) / 1048576.0, 2)::float8           AS size_mb,
    round(cs.before_bytes / 1048576.0, 2)::float8                      AS before_compression_mb,
    round(cs.after_bytes / 1048576.0, 2)::float8                       AS after_compression_mb,
    round((cs.before_bytes::numeric / NULLIF(cs.after_bytes, 0)), 1)::float8 AS compression_ratio
FROM rels r
LEFT JOIN LATERAL (
    SELECT sum(s.number_compressed_chunks)          AS compressed_chunks,
           sum(s.before_compression_total_bytes)    AS before_bytes,
           sum(s.after_compression_total_bytes)     AS after_bytes
    FROM hypertable_compression_stats(r.storage) s
) cs ON true
ORDER BY size_mb DESC, r.relation
