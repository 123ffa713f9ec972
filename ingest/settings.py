"""Ingest settings from the environment (TOWER_INGEST_*) and the several-venues config file."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.depth import DepthConfig
from ingest.runtime import RuntimeConfig
from ingest.venues import REGISTRY
from ingest.venues.base import Venue
from ingest.writer import WriterConfig
from tower.settings import ConfigError


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_INGEST_", extra="ignore")

    spill_dir: Path = Path(".tower-spill")  # where rows wait on disk while the database is away
    # Defaults are the writer's and the runtime's own: one place for each.
    batch_rows: int = Field(WriterConfig.batch_rows, ge=1, le=1_000_000)
    flush_ms: int = Field(round(WriterConfig.flush_s * 1000), ge=1, le=60_000)
    memory_rows: int = Field(WriterConfig.memory_rows, ge=1000)
    # Disk budget of the spill file(s), MB: beyond it the readers wait (TCP backpressure); 0 = never spill.
    spill_max_mb: int = Field(WriterConfig.spill_max_bytes // 2**20, ge=0, le=10_000_000)
    # Overloaded (L1 book conflated) when more rows than this wait; must stay below memory_rows.
    # Unset: the writer's default, or half of memory_rows if that is smaller.
    overload_rows: int | None = Field(None, ge=100)
    queue_items: int = Field(WriterConfig.queue_items, ge=10)  # groups of up to 256 rows each
    stale_after_s: float = Field(RuntimeConfig.stale_after_s, gt=0)  # connected but no market data: reconnect
    backoff_cap_s: float = Field(RuntimeConfig.backoff_cap_s, gt=0)
    # Order-book depth samples (ops.raw_book_depth): at most one per symbol this often, and the standard
    # market order whose slippage is measured, quote currency.
    depth_sample_ms: int = Field(round(DepthConfig.sample_s * 1000), ge=100, le=3_600_000)
    slippage_notional: float = Field(DepthConfig.slippage_notional, gt=0, le=1e10, allow_inf_nan=False)

    @field_validator("overload_rows")
    @classmethod
    def _below_memory(cls, value: int | None, info: ValidationInfo) -> int | None:
        memory = info.data.get("memory_rows")
        if value is not None and memory is not None and value >= memory:
            raise ValueError(
                f"must be below TOWER_INGEST_MEMORY_ROWS ({memory}): conflation has to start before readers pause"
            )
        return value

    def ping_s(self, venue: type[Venue]) -> float | None:
        """The app-level ping interval of a venue that needs one: TOWER_INGEST_<VENUE>_PING_S, else the
        venue's default; None for venues that ping us (Binance)."""
        if venue.heartbeat_s is None:
            return None
        name = f"TOWER_INGEST_{venue.name.upper()}_PING_S"
        text = os.environ.get(name)
        if text is None:
            return venue.heartbeat_s
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name}: not a number of seconds: {text!r}") from None
        limit = venue.idle_close_s
        if not value > 0 or (limit is not None and not value < limit):
            why = f" ({venue.name} closes connections silent for {limit:g} s)" if limit is not None else ""
            raise ConfigError(f"{name}: must be > 0" + (f" and < {limit:g}" if limit is not None else "") + why)
        return value

    def writer_config(self, name: str) -> WriterConfig:
        return WriterConfig(
            batch_rows=self.batch_rows,
            flush_s=self.flush_ms / 1000,
            memory_rows=self.memory_rows,
            spill_max_bytes=self.spill_max_mb * 2**20,
            overload_rows=self.overload_rows or min(WriterConfig.overload_rows, self.memory_rows // 2),
            queue_items=self.queue_items,
            spill_path=self.spill_dir / f"{name}.jsonl",
        )

    def depth_config(self) -> DepthConfig:
        return DepthConfig(sample_s=self.depth_sample_ms / 1000, slippage_notional=self.slippage_notional)

    def runtime_config(self, venue: type[Venue] | Venue) -> RuntimeConfig:
        return RuntimeConfig(
            stale_after_s=self.stale_after_s, backoff_cap_s=self.backoff_cap_s, rotate_after_s=venue.rotate_after_s
        )


SYMBOL = re.compile(r"[A-Za-z0-9._:-]{1,40}")


class VenueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    symbols: list[str] = Field(min_length=1)
    ws_url: str | None = None
    testnet: bool = False
    rest_url: str | None = None  # Binance open interest, OKX instrument metadata
    derivs: bool = True  # mark/index/funding/open interest and liquidations as well as trades and L1
    depth: bool = True  # full order books, sampled into ops.raw_book_depth

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown venue {value!r}; known: {', '.join(sorted(REGISTRY))}")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbol_shape(cls, value: list[str]) -> list[str]:
        # Symbols end up in stream names, URLs and log lines: only what venues actually use.
        bad = [s for s in value if not SYMBOL.fullmatch(s)]
        if bad:
            raise ValueError(
                f"not a venue symbol: {', '.join(repr(b) for b in bad)} (letters, digits and . _ : - only, at most 40)"
            )
        return value

    @field_validator("ws_url")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("rest_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        name = info.data.get("name")
        if name in REGISTRY and not REGISTRY[name].has_rest:
            raise ValueError(f"{name} reads nothing over REST")
        return value


class IngestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    venues: list[VenueConfig] = Field(min_length=1)


def read_config(path: Path) -> list[VenueConfig]:
    """Reads a TOML file with one [[venues]] table per venue: name, symbols, optional ws_url and testnet."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        return IngestFile.model_validate(data).venues
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
