"""Ingest settings from the environment (TOWER_INGEST_*) and the several-venues config file."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.runtime import RuntimeConfig
from ingest.venues import REGISTRY
from ingest.writer import WriterConfig
from tower.settings import ConfigError


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_INGEST_", extra="ignore")

    spill_dir: Path = Path(".tower-spill")        # where rows wait on disk while the database is away
    batch_rows: int = Field(5000, ge=1, le=1_000_000)
    flush_ms: int = Field(100, ge=1, le=60_000)  # 200 ms gave p99 ~290 ms at 20k msgs/s: too little margin
    memory_rows: int = Field(500_000, ge=1000)
    queue_items: int = Field(1000, ge=10)  # groups of up to 256 rows each
    stale_after_s: float = Field(30.0, gt=0)        # connected but no market data this long = reconnect
    backoff_cap_s: float = Field(30.0, gt=0)
    hyperliquid_ping_s: float = Field(20.0, gt=0, lt=60)  # the venue drops connections silent for 60 s
    bybit_ping_s: float = Field(20.0, gt=0, le=60)        # Bybit asks for a ping about every 20 s
    okx_ping_s: float = Field(20.0, gt=0, lt=30)          # OKX drops connections with no traffic for 30 s

    def ping_s(self, venue: str) -> float | None:
        """The app-level ping interval of venues that need one (Binance pings us instead)."""
        return {"hyperliquid": self.hyperliquid_ping_s, "bybit": self.bybit_ping_s, "okx": self.okx_ping_s}.get(venue)

    def writer_config(self, name: str) -> WriterConfig:
        return WriterConfig(batch_rows=self.batch_rows, flush_s=self.flush_ms / 1000, memory_rows=self.memory_rows,
                            queue_items=self.queue_items, spill_path=self.spill_dir / f"{name}.jsonl")

    def runtime_config(self, venue: str) -> RuntimeConfig:
        # Binance closes every connection at 24 h: rotate (overlap, then switch) at 23 h.
        return RuntimeConfig(stale_after_s=self.stale_after_s, backoff_cap_s=self.backoff_cap_s,
                             rotate_after_s=23 * 3600 if venue == "binance" else None)


SYMBOL = re.compile(r"[A-Za-z0-9._:-]{1,40}")


class VenueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    symbols: list[str] = Field(min_length=1)
    ws_url: str | None = None
    testnet: bool = False
    rest_url: str | None = None  # Binance open interest, OKX instrument metadata
    derivs: bool = True          # mark/index/funding/open interest and liquidations as well as trades and L1

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
            raise ValueError(f"not a venue symbol: {', '.join(repr(b) for b in bad)} "
                             "(letters, digits and . _ : - only, at most 40)")
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
        if name in REGISTRY and "rest_url" not in inspect.signature(REGISTRY[name]).parameters:
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
