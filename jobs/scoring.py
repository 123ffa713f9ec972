"""Risk scores per venue/symbol/minute: metrics from SQL (jobs/sql/risk_metrics.sql), points in Python."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson

from jobs.metric_names import STORED_METRICS
from jobs.rules import COMPONENTS, Scoring
from jobs.sqlfiles import sql

MAD_TO_SIGMA = 1.4826  # MAD x this estimates the standard deviation of normal data


@dataclass(frozen=True)
class Score:
    bucket: datetime
    venue: str
    symbol: str
    asset: str | None
    score: float
    top_component: str | None
    components: dict[str, dict[str, float | None]]
    stored: dict[str, float | datetime | None]  # STORED_METRICS -> the value written to its column


def lookback(cfg: Scoring) -> timedelta:
    """How far before a minute its metrics look (baseline, volatility and freshness windows)."""
    return timedelta(minutes=max(cfg.baseline_minutes, cfg.vol_window_minutes))


async def history_boundary(conn: asyncpg.Connection, start: datetime, cfg: Scoring) -> datetime:
    """`start` when every look-back minute before it is already scored (a live pass reads its baselines
    from ops.risk_scores, not an hour of raw ticks), else the look-back start (all from features)."""
    back = lookback(cfg)
    scored = await conn.fetchval(
        "SELECT count(DISTINCT bucket) FROM ops.risk_scores WHERE bucket >= $1 AND bucket < $2", start - back, start
    )
    return start if scored == back // timedelta(minutes=1) else start - back


async def fetch_metric_rows(
    conn: asyncpg.Connection, start: datetime, end: datetime, cfg: Scoring, history_until: datetime | None = None
) -> list[asyncpg.Record]:
    """Raw metric rows for every active instrument and minute in [start, end).

    Look-back minutes before `history_until` are read from ops.risk_scores; None reads everything
    from ops.features_1m. Both give the same values (stored metrics are not rounded).
    """
    back = lookback(cfg)
    async with conn.transaction():
        # The planner over-estimates the generated grid and JIT-compiles the query: ~170 ms of
        # compilation for a few ms of work, every minute.
        await conn.execute("SET LOCAL jit = off")
        return await conn.fetch(
            sql("risk_metrics"),
            start,
            end,
            timedelta(minutes=cfg.baseline_minutes),
            cfg.min_baseline_minutes,
            cfg.vol_window_minutes,
            cfg.quote_stale_s,
            cfg.min_trades_for_flow,
            back,
            history_until or start - back,
        )


def spread_z(row: asyncpg.Record, cfg: Scoring) -> float | None:
    """Robust z-score of the minute's spread vs its trailing median, scaled by MAD (with a floor)."""
    if row["spread_bps"] is None or row["spread_median"] is None:
        return None
    scale = max(MAD_TO_SIGMA * (row["spread_mad"] or 0.0), cfg.spread_scale_floor_bps)
    return (row["spread_bps"] - row["spread_median"]) / scale


def slip_rise_pct(row: asyncpg.Record, cfg: Scoring) -> float | None:
    """The slippage of the standard order vs its trailing median, as the share of liquidity gone:
    1 - usual / now, in %. For a book of even density slippage is inversely proportional to depth, so
    slippage at 4x its usual reads 75 %, like a book within 25 bps at a quarter of its median."""
    slip, usual = row["slip_bps"], row["slip_median"]
    if slip is None or usual is None:
        return None
    usual = max(usual, cfg.slip_floor_bps)
    return max(0.0, 1 - usual / slip) * 100 if slip > 0 else 0.0


def liquidity_drop_pct(row: asyncpg.Record, cfg: Scoring) -> float | None:
    """The liquidity component's value: the larger of the +-25 bps depth drop and the slippage rise,
    both % of the market's usual liquidity gone; None without depth data (no book, no baseline)."""
    return _max(row["depth_25bps_drop_pct"], slip_rise_pct(row, cfg))


def _abs(value: float | None) -> float | None:
    return None if value is None else abs(value)


def _max(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def score_row(row: asyncpg.Record, cfg: Scoring) -> Score:
    z = spread_z(row, cfg)
    liquidity = liquidity_drop_pct(row, cfg)
    vol = row["realized_vol_bps"]
    values: dict[str, float | None] = {
        "spread": z,
        "depth": row["depth_drop_pct"],
        "imbalance": _max(_abs(row["book_imbalance"]), _abs(row["flow_imbalance"])),
        # A 3-sigma move at the minute's realized volatility counts like a jump of that size.
        "volatility": _max(row["jump_bps"], None if vol is None else 3 * vol),
        "stale": row["freshness_s"],
        "latency": row["latency_ms"],
        "divergence": _abs(row["divergence_bps"]),
        # Derivatives context: NULL (no derivs feed for the market that minute) stays None, 0 points.
        "funding": _abs(row["funding_8h_bps"]),
        "basis": _abs(row["basis_bps"]),
        "liquidations": row["liq_notional"],
        # Order-book depth (ops.depth_features_1m): NULL (no full book for the market) stays None, 0 points.
        "liquidity": liquidity,
    }
    components = {}
    remaining = 1.0
    top, top_weighted = None, 0.0
    for name in COMPONENTS:
        comp = cfg.components[name]
        points = comp.points(values[name])
        components[name] = {"value": _clean(values[name]), "points": round(points, 4)}
        weighted = comp.weight * points
        remaining *= 1 - weighted / 100
        if weighted > top_weighted:
            top, top_weighted = name, weighted
    # spread_z and liquidity_drop_pct need scoring parameters (scale floors), so they are computed here;
    # every other stored metric is a column of risk_metrics.sql under the same name.
    computed = {"spread_z": z, "liquidity_drop_pct": liquidity}
    stored = {k: _finite(computed[k] if k in computed else row[k]) for k in STORED_METRICS}
    return Score(
        bucket=row["bucket"],
        venue=row["venue"],
        symbol=row["symbol"],
        asset=row["asset"],
        score=round(min(100.0, max(0.0, 100 * (1 - remaining))), 4),
        top_component=top,
        components=components,
        stored=stored,
    )


def _finite(value):
    """NaN/inf (e.g. a zero median) become None. Metrics are stored unrounded: later minutes read
    them back as history and must get exactly what a from-scratch computation would."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(value: float | None) -> float | None:
    """Rounded for display in the components document."""
    value = _finite(value)
    return None if value is None else round(float(value), 6)


async def score_minutes(conn: asyncpg.Connection, start: datetime, end: datetime, cfg: Scoring) -> list[Score]:
    """Score [start, end) and upsert into ops.risk_scores; identical re-scores write nothing."""
    boundary = await history_boundary(conn, start, cfg)
    scores = [score_row(r, cfg) for r in await fetch_metric_rows(conn, start, end, cfg, boundary)]
    if scores:
        await conn.executemany(
            sql("upsert_score"),
            [
                (
                    s.bucket,
                    s.venue,
                    s.symbol,
                    s.asset,
                    s.score,
                    s.top_component,
                    orjson.dumps(s.components).decode(),
                    *[s.stored[k] for k in STORED_METRICS],
                )
                for s in scores
            ],
        )
    return scores
