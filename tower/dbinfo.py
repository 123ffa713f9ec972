"""`tower db-info`: what server this is, what it stores, and how its jobs are doing."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg


@dataclass
class DbInfo:
    server_version: str
    timescaledb_version: str
    license: str
    hypertables: list[dict] = field(default_factory=list)
    caggs: list[dict] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)


async def collect(conn: asyncpg.Connection) -> DbInfo:
    info = DbInfo(
        server_version=await conn.fetchval("SHOW server_version"),
        timescaledb_version=await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        or "not installed",
        license=await conn.fetchval("SELECT current_setting('timescaledb.license', true)") or "-",
    )
    tsl = info.license == "timescale"
    for r in await conn.fetch(
        """SELECT format('%I.%I', hypertable_schema, hypertable_name) AS name, num_chunks,
                  compression_enabled,
                  hypertable_size(format('%I.%I', hypertable_schema, hypertable_name)::regclass) AS bytes
           FROM timescaledb_information.hypertables
           ORDER BY hypertable_schema, hypertable_name"""
    ):
        row = dict(r)
        row["ratio"] = None
        if tsl and r["compression_enabled"]:
            stats = await conn.fetchrow(
                """SELECT sum(before_compression_total_bytes) AS before, sum(after_compression_total_bytes) AS after,
                          sum(number_compressed_chunks) AS compressed
                   FROM hypertable_compression_stats($1::regclass)""",
                r["name"],
            )
            if stats and stats["after"]:
                row["ratio"] = float(stats["before"]) / float(stats["after"])
            row["compressed_chunks"] = stats["compressed"] if stats else 0
        info.hypertables.append(row)
    if tsl:
        for r in await conn.fetch(
            """SELECT format('%I.%I', view_schema, view_name) AS name, materialized_only, compression_enabled,
                      hypertable_size(format('%I.%I', materialization_hypertable_schema,
                                             materialization_hypertable_name)::regclass) AS bytes
               FROM timescaledb_information.continuous_aggregates ORDER BY view_schema, view_name"""
        ):
            info.caggs.append(dict(r))
    else:
        for r in await conn.fetch(
            "SELECT relation AS name FROM ops.schema_migrations WHERE kind = 'continuous' ORDER BY relation"
        ):
            info.caggs.append(
                {
                    "name": r["name"],
                    "materialized_only": None,
                    "compression_enabled": False,
                    "bytes": None,
                    "note": "plain view (apache license): computed live",
                }
            )
    for r in await conn.fetch(
        """SELECT j.job_id, j.application_name, j.proc_name, j.schedule_interval,
                  coalesce(pj.relation, '-') AS relation,
                  s.last_run_status, s.last_run_started_at, s.next_start, s.total_runs, s.total_failures
           FROM timescaledb_information.jobs j
           LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
           LEFT JOIN ops.policy_jobs pj ON pj.job_id = j.job_id
           ORDER BY j.job_id"""
    ):
        info.jobs.append(dict(r))
    return info
