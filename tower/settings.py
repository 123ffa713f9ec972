"""Settings from the environment (TOWER_*), with errors that name the variable to fix."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tower.durations import parse_timeout

# What `tower migrate` sets on tower_readonly in its database unless the environment says otherwise.
READONLY_STATEMENT_TIMEOUT = timedelta(seconds=60)
READONLY_IDLE_TIMEOUT = timedelta(minutes=5)


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_", extra="ignore")

    dsn: str
    readonly_password: str | None = None

    @field_validator("dsn")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL, e.g. postgresql://tower:secret@localhost:5432/tower")
        _check_ports(value)
        return value


class ReadonlySettings(BaseSettings):
    """TOWER_READONLY_STATEMENT_TIMEOUT, TOWER_READONLY_IDLE_TIMEOUT: limits of the read-only role's sessions
    (dashboards, ad-hoc SQL) in this database; seconds or a duration (60, 60s, 2m), 'off' for none."""

    model_config = SettingsConfigDict(env_prefix="TOWER_READONLY_", extra="ignore")

    statement_timeout: timedelta = READONLY_STATEMENT_TIMEOUT
    idle_timeout: timedelta = READONLY_IDLE_TIMEOUT

    @field_validator("statement_timeout", "idle_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> object:
        return parse_timeout(value) if isinstance(value, str) else value


def _check_ports(dsn: str) -> None:
    """Each host:port of the DSN (libpq allows several, comma-separated) has a numeric port in range."""
    hosts = dsn.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    for host in hosts.split(","):
        port = host.rsplit("]", 1)[-1].partition(":")[2]  # after an [IPv6] literal's brackets
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(
                f"port {port!r} is not a number from 1 to 65535, e.g. postgresql://tower:secret@localhost:5432/tower"
            )


class MetricsSettings(BaseSettings):
    """TOWER_METRICS_PORT: serve Prometheus /metrics on this port (unset: no metrics endpoint)."""

    model_config = SettingsConfigDict(env_prefix="TOWER_", extra="ignore")

    metrics_port: int | None = Field(None, ge=1, le=65535)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment, turning pydantic's report into a ConfigError."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = []
        for err in exc.errors():
            name = (prefix + "_".join(str(p) for p in err["loc"])).upper()
            if err["type"] == "missing":
                problems.append(f"{name} is not set")
            else:
                problems.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(problems)) from None
