"""Risk rules and scoring parameters: a TOML file merged over jobs/rules.default.toml, validated by pydantic.

Errors name the field to fix, e.g. `rules.spread_blowout.for_minutes: must be >= 1`.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobs.metric_names import STORED_METRICS
from tower.durations import parse_duration
from tower.settings import ConfigError

DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "rules.default.toml"

SEVERITIES = ("info", "warning", "critical")  # ascending
COMPONENTS = (
    "spread",
    "depth",
    "imbalance",
    "volatility",
    "stale",
    "latency",
    "divergence",
    "funding",
    "basis",
    "liquidations",
    "liquidity",
)
# Stored only as the history later minutes read their baselines from, not levels to threshold:
# depth_notional and depth_25bps are absolute per market (rules watch depth_drop_pct and
# depth_25bps_drop_pct / liquidity_drop_pct), mid a price, last_update_ts a time.
HISTORY_ONLY_METRICS = frozenset({"depth_notional", "depth_25bps", "mid", "last_update_ts"})
# Columns of ops.risk_scores a symbol rule may watch (the score, then the stored metrics in column
# order); venue rules watch venue-wide aggregates.
SYMBOL_METRICS = ("score", *(m for m in STORED_METRICS if m not in HISTORY_ONLY_METRICS))
VENUE_METRICS = ("stale_fraction",)
PIPELINE_METRICS = ("job_failed", "ingest_backlog")  # the tower's own health (jobs/pipeline.py)


class RulesError(ConfigError):
    """The rules file is unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    low: float
    high: float
    weight: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Component:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self

    def points(self, value: float | None) -> float:
        """0..100: 0 at or below low, 100 at or above high, linear in between."""
        if value is None:
            return 0.0
        return 100.0 * min(1.0, max(0.0, (value - self.low) / (self.high - self.low)))


class Scoring(_Strict):
    baseline_minutes: int = Field(60, ge=5, le=24 * 60)
    min_baseline_minutes: int = Field(10, ge=3)
    spread_scale_floor_bps: float = Field(0.25, gt=0)
    vol_window_minutes: int = Field(15, ge=2, le=24 * 60)
    quote_stale_s: float = Field(15, gt=0)
    stale_after_s: float = Field(15, gt=0)
    min_trades_for_flow: int = Field(5, ge=1)
    # Slippage baselines below this count as this (liquidity component): a book whose standard order
    # usually costs a fraction of a bp would otherwise score a rise to 1 bp as most of its liquidity gone.
    slip_floor_bps: float = Field(2.0, gt=0)
    components: dict[Literal[COMPONENTS], Component]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _complete(self) -> Scoring:
        if self.min_baseline_minutes > self.baseline_minutes:
            raise ValueError(
                f"min_baseline_minutes ({self.min_baseline_minutes}) must be <= "
                f"baseline_minutes ({self.baseline_minutes})"
            )
        missing = [c for c in COMPONENTS if c not in self.components]
        if missing:
            raise ValueError(f"components: missing {', '.join(missing)}")
        return self


GROUP_LABELS = ("venue", "rule", "symbol", "asset", "severity")


class Notify(_Strict):
    repeat_minutes: int = Field(240, ge=1)
    send_resolved: bool = True
    # Grouping: queued notifications of one sink and kind whose group_by labels agree and whose data
    # times lie within group_interval of the first go out as one; group_wait holds a fresh one back (wall
    # time) so its group can fill up. One minute's evaluation is always queued at once.
    group_by: tuple[Literal[GROUP_LABELS], ...] = ("venue", "rule")  # type: ignore[valid-type]
    group_wait: timedelta = timedelta(0)
    group_interval: timedelta = timedelta(minutes=1)

    @field_validator("group_wait", "group_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip() in ("0", "0s"):
                return timedelta(0)
            return parse_duration(value) or timedelta(0)
        return value


class Rule(_Strict):
    description: str = ""
    enabled: bool = True
    scope: Literal["symbol", "venue", "pipeline"] = "symbol"
    metric: str
    direction: Literal["above", "below"] = "above"
    absolute: bool = False
    info: float | None = None
    warning: float | None = None
    critical: float | None = None
    clear_at: float | None = None
    for_minutes: int = Field(1, ge=1, le=24 * 60)
    clear_minutes: int = Field(1, ge=1, le=24 * 60)
    repeat_minutes: int | None = Field(None, ge=1)
    inhibited_by: tuple[str, ...] = ()
    # A minute with an open gap or thin coverage (ops.features_1m.complete false) proves nothing about the
    # market: such rules skip it (neither fire nor clear). Feed-health rules set this to fire anyway.
    fire_on_incomplete: bool = False
    runbook_url: str | None = None  # sent with every notification of the rule
    dashboard: str = "Risk Monitor"  # the Metabase dashboard a notification links to

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        allowed = {"symbol": SYMBOL_METRICS, "venue": VENUE_METRICS, "pipeline": PIPELINE_METRICS}[self.scope]
        if self.metric not in allowed:
            raise ValueError(f"metric {self.metric!r} is not a {self.scope} metric; use one of {', '.join(allowed)}")
        levels = self.thresholds()
        if not levels:
            raise ValueError("set at least one threshold: info, warning or critical")
        values = [v for _, v in levels]
        ordered = values == sorted(values) if self.direction == "above" else values == sorted(values, reverse=True)
        if not ordered:
            raise ValueError(
                f"thresholds must get stricter with severity ({self.direction}): "
                + ", ".join(f"{s}={v}" for s, v in levels)
            )
        if self.clear_at is not None:
            first = values[0]
            if (self.direction == "above" and self.clear_at > first) or (
                self.direction == "below" and self.clear_at < first
            ):
                raise ValueError(
                    f"clear_at ({self.clear_at}) must be on the clear side of the lowest threshold ({first})"
                )
        return self

    def thresholds(self) -> list[tuple[str, float]]:
        """(severity, threshold) from least to most severe, only those set."""
        return [(s, getattr(self, s)) for s in SEVERITIES if getattr(self, s) is not None]

    def crosses(self, value: float, level: float) -> bool:
        return value >= level if self.direction == "above" else value <= level

    def severity_of(self, value: float | None) -> str | None:
        """The most severe level the value crosses, or None when it crosses none."""
        if value is None:
            return None
        value = abs(value) if self.absolute else value
        found = None
        for severity, level in self.thresholds():
            if self.crosses(value, level):
                found = severity
        return found

    def still_active(self, value: float | None) -> bool:
        """While firing, whether the value keeps it firing (clear_at gives hysteresis)."""
        if value is None:
            return False
        if self.clear_at is None:
            return self.severity_of(value) is not None
        value = abs(value) if self.absolute else value
        return value > self.clear_at if self.direction == "above" else value < self.clear_at

    def first_threshold(self) -> float:
        return self.thresholds()[0][1]


class RuleSet(_Strict):
    scoring: Scoring
    notify: Notify = Notify()
    rules: dict[str, Rule]

    @model_validator(mode="after")
    def _references(self) -> RuleSet:
        for name, rule in self.rules.items():
            if not name.replace("_", "").isalnum():
                raise ValueError(f"rules.{name}: rule names use letters, digits and _ only")
            for source in rule.inhibited_by:
                other = self.rules.get(source)
                if other is None or other.scope != "venue":
                    venue_rules = [n for n, r in self.rules.items() if r.scope == "venue"]
                    raise ValueError(
                        f"rules.{name}.inhibited_by: {source!r} is not a venue-scope rule "
                        f"(known: {', '.join(venue_rules) or 'none'})"
                    )
        return self

    def enabled(self, scope: str) -> dict[str, Rule]:
        return {n: r for n, r in self.rules.items() if r.enabled and r.scope == scope}

    def repeat_minutes(self, rule: Rule) -> int:
        return rule.repeat_minutes or self.notify.repeat_minutes


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Defaults merged with `path` (if given), validated."""
    data = _read(DEFAULT_RULES_FILE)
    source = str(DEFAULT_RULES_FILE)
    if path is not None:
        data = _merge(data, _read(Path(path)))
        source = str(path)
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"rules file {source}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise RulesError(f"rules file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {path}: not valid TOML: {exc}") from None


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "is required",
    "extra_forbidden": "unknown field",
}


def _describe(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    template = _MESSAGES.get(err["type"])
    msg = template.format(**err.get("ctx", {})) if template else err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
