"""Inline SVG charts for the HTML report: line, area and bar (grouped or stacked), from a card's result and
its Metabase visualization settings (graph.dimensions, graph.metrics, stackable.stack_type)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

PALETTE = [
    "#509EE3",
    "#88BF4D",
    "#A989C5",
    "#EF8C8C",
    "#F9D45C",
    "#F2A86F",
    "#98D9D9",
    "#7172AD",
    "#6450E3",
    "#4DBF7C",
    "#C5A989",
    "#8C8CEF",
]
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 30, 40


@dataclass
class Series:
    name: str
    points: list[tuple[object, float]]  # (x, y), x in the data's own type


def series_from(columns: Sequence[str], rows: Sequence[tuple], settings: dict) -> list[Series]:
    """Metabase's reading of a result: two dimensions = x and a breakout (one line per breakout value,
    first metric); one dimension = x with one line per metric."""
    dims, metrics = settings["graph.dimensions"], settings["graph.metrics"]
    ix = columns.index(dims[0])
    out: dict[str, Series] = {}
    if len(dims) > 1:
        ib, iy = columns.index(dims[1]), columns.index(metrics[0])
        for r in rows:
            if r[iy] is not None:
                key = str(r[ib])
                out.setdefault(key, Series(key, [])).points.append((r[ix], float(r[iy])))
    else:
        for m in metrics:
            iy = columns.index(m)
            out[m] = Series(m, [(r[ix], float(r[iy])) for r in rows if r[iy] is not None])
    return list(out.values())


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5 and len(ticks) < 20:
        ticks.append(round(v, 10))
        v += step
    return ticks


def fmt_number(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g}B"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a == 0 or a >= 1:
        return f"{v:,.4g}" if a < 1000 else f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_x(x: object, span_days: float = 0) -> str:
    if isinstance(x, datetime):
        return x.strftime("%m-%d %H:%M" if span_days >= 1 else "%H:%M")
    if isinstance(x, float):
        return fmt_number(x)
    return str(x)


def colors(series: list[Series], settings: dict) -> list[str]:
    """Metabase's per-series colors (series_settings.<name>.color) where given, else the palette."""
    chosen = settings.get("series_settings", {})
    return [chosen.get(s.name, {}).get("color") or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def render_chart(
    display: str, columns: Sequence[str], rows: Sequence[tuple], settings: dict, width: int, height: int
) -> str:
    series = series_from(columns, rows, settings)
    if not any(s.points for s in series):
        return '<div class="empty">No results</div>'
    if display == "bar":
        body = _bars(series, settings, width, height)
    else:
        body = _lines(series, settings, width, height, fill=display == "area")
    legend = "".join(
        f'<span class="key"><i style="background:{escape(c)}"></i>{escape(s.name)}</span>'
        for s, c in zip(series, colors(series, settings), strict=True)
    )
    return (
        f'<div class="legend">{legend}</div>'
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"{body}</svg>"
    )


def _y_axis(lo: float, hi: float, settings: dict, width: int, height: int):
    if "graph.y_axis.max" in settings:
        hi = max(hi, float(settings["graph.y_axis.max"]))
    # Include zero unless the values sit far from it (prices): then zero would flatten every move.
    far_from_zero = lo > 0 and (hi - lo) < 0.5 * hi
    ticks = nice_ticks(lo if far_from_zero else min(lo, 0.0), hi)
    y0, y1 = ticks[0], ticks[-1]
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM

    def y(v: float) -> float:
        return MARGIN_TOP + plot_h * (1 - (v - y0) / ((y1 - y0) or 1))

    parts = []
    for t in ticks:
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y(t) + 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(fmt_number(t))}</text>"
        )
    title = settings.get("graph.y_axis.title_text")
    if title:
        parts.append(
            f'<text transform="translate(12,{MARGIN_TOP + plot_h / 2:.0f}) rotate(-90)" class="axis-title" '
            f'text-anchor="middle">{escape(title)}</text>'
        )
    return y, "".join(parts)


def _x_positions(xs: list, width: int):
    """Map x values to pixels: time and numbers linearly, anything else as evenly spaced categories."""
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    if xs and all(isinstance(v, datetime) for v in xs):
        lo, hi = min(xs), max(xs)
        span = (hi - lo).total_seconds() or 1.0
        return (lambda v: MARGIN_LEFT + plot_w * (v - lo).total_seconds() / span), span / 86400
    if xs and all(isinstance(v, int | float) for v in xs):
        lo, hi = min(xs), max(xs)
        return (lambda v: MARGIN_LEFT + plot_w * (v - lo) / ((hi - lo) or 1)), 0
    order = {v: i for i, v in enumerate(dict.fromkeys(xs))}
    n = max(len(order) - 1, 1)
    return (lambda v: MARGIN_LEFT + plot_w * order[v] / n), 0


TIME_STEPS = [60 * m for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)]


def time_ticks(lo: datetime, hi: datetime, max_labels: int = 7) -> list[datetime]:
    """Round times (every 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, days) between lo and hi."""
    span = (hi - lo).total_seconds()
    step = next((s for s in TIME_STEPS if span / s <= max_labels), TIME_STEPS[-1])
    first = math.ceil(lo.timestamp() / step) * step
    return [datetime.fromtimestamp(t, lo.tzinfo) for t in range(int(first), int(hi.timestamp()) + 1, step)]


def _x_labels(xs: list, xpos, span_days: float, height: int, max_labels: int = 7, width: int = 0) -> str:
    base = height - MARGIN_BOTTOM
    if xs and all(isinstance(v, datetime) for v in xs):
        shown = time_ticks(min(xs), max(xs), max_labels)
    else:
        distinct = sorted(set(xs)) if all(isinstance(v, int | float) for v in xs) else list(dict.fromkeys(xs))
        shown = distinct[:: max(1, math.ceil(len(distinct) / max_labels))]
    parts = [
        f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT if width else MARGIN_LEFT}" '
        f'y1="{base}" y2="{base}" class="axis"/>'
    ]
    for v in shown:
        parts.append(
            f'<text x="{xpos(v):.1f}" y="{base + 16}" class="tick" text-anchor="middle">'
            f"{escape(fmt_x(v, span_days)[:14])}</text>"
        )
    return "".join(parts)


def _lines(series: list[Series], settings: dict, width: int, height: int, fill: bool) -> str:
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    y, axis = _y_axis(min(ys), max(ys), settings, width, height)
    xpos, span_days = _x_positions(xs, width)
    parts = [axis, _x_labels(xs, xpos, span_days, height, width=width)]
    for s, color in zip(series, colors(series, settings), strict=True):
        pts = (
            sorted(s.points, key=lambda p: p[0])
            if all(isinstance(p[0], datetime | int | float) for p in s.points)
            else s.points
        )
        for run in _runs(pts):
            coords = " ".join(f"{xpos(x):.1f},{y(v):.1f}" for x, v in run)
            if fill:
                base = height - MARGIN_BOTTOM
                parts.append(
                    f'<polygon points="{xpos(run[0][0]):.1f},{base} {coords} {xpos(run[-1][0]):.1f},{base}" '
                    f'fill="{color}" fill-opacity="0.15"/>'
                )
            if len(run) == 1:
                parts.append(f'<circle cx="{xpos(run[0][0]):.1f}" cy="{y(run[0][1]):.1f}" r="2" fill="{color}"/>')
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6" '
                f'stroke-linejoin="round"><title>{escape(s.name)}</title></polyline>'
            )
    return "".join(parts)


def _runs(points: list[tuple[object, float]]) -> list[list[tuple[object, float]]]:
    """Split a time series where it has no data for much longer than its usual spacing: a line across a
    four-hour hole would claim values nobody measured."""
    if len(points) < 3 or not all(isinstance(p[0], datetime) for p in points):
        return [points] if points else []
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(points)]
    usual = sorted(gaps)[len(gaps) // 2] or 1.0
    runs, current = [], [points[0]]
    for gap, p in zip(gaps, points[1:], strict=True):
        if gap > 5 * usual:
            runs.append(current)
            current = []
        current.append(p)
    runs.append(current)
    return runs


def _bars(series: list[Series], settings: dict, width: int, height: int) -> str:
    stacked = settings.get("stackable.stack_type") in ("stacked", "normalized")
    xs_all = [x for s in series for x, _ in s.points]
    categories = (
        sorted(set(xs_all))
        if all(isinstance(v, datetime | int | float) for v in xs_all)
        else list(dict.fromkeys(xs_all))
    )
    values = {(s.name, x): v for s in series for x, v in s.points}
    if stacked:
        totals = [sum(values.get((s.name, c), 0.0) for s in series) for c in categories]
        lo, hi = min([0.0, *totals]), max([0.0, *totals])
    else:
        ys = list(values.values())
        lo, hi = min([0.0, *ys]), max([0.0, *ys])
    y, axis = _y_axis(lo, hi, settings, width, height)
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    timed = bool(categories) and all(isinstance(c, datetime) for c in categories)
    if timed and len(categories) > 1:
        # Bars stand at their time, so holes in the data stay visible; width = the closest spacing.
        lo, hi = categories[0], categories[-1]
        span = (hi - lo).total_seconds()
        closest = min((b - a).total_seconds() for a, b in itertools.pairwise(categories))
        band = max(plot_w * closest / (span + closest), 1.0)
        inner = plot_w - band

        def center(c):
            return MARGIN_LEFT + band / 2 + inner * (c - lo).total_seconds() / span
    else:
        band = plot_w / max(len(categories), 1)
        index = {c: i for i, c in enumerate(categories)}

        def center(c):
            return MARGIN_LEFT + band * (index[c] + 0.5)

    bar_w = band * 0.8 if stacked else band * 0.8 / max(len(series), 1)
    span_days = 0.0
    if timed:
        span_days = (categories[-1] - categories[0]).total_seconds() / 86400
    parts = [axis, _x_labels(categories, center, span_days, height, width=width)]
    palette = colors(series, settings)
    for c in categories:
        left = center(c) - band * 0.4
        acc = 0.0
        for si, s in enumerate(series):
            v = values.get((s.name, c))
            if v is None:
                continue
            color = palette[si]
            if stacked:
                top, bottom = y(acc + v), y(acc)
                acc += v
                x = left
            else:
                top, bottom = y(max(v, 0)), y(min(v, 0))
                x = left + bar_w * si
            parts.append(
                f'<rect x="{x:.1f}" y="{min(top, bottom):.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
                f'height="{abs(bottom - top):.1f}" fill="{color}"><title>{escape(s.name)} '
                f"{escape(fmt_x(c, span_days))}: {escape(fmt_number(v))}</title></rect>"
            )
    return "".join(parts)
