"""`tower metabase provision` settings, all from the environment (TOWER_ prefix)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tower.settings import ConfigError


class MetabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_", extra="ignore")

    metabase_url: str  # where this command reaches Metabase's API
    metabase_public_url: str | None = None  # what people open (printed URLs); default metabase_url
    metabase_email: str | None = None  # the admin: created on first run, logged in later
    metabase_password: str | None = None
    metabase_api_key: str | None = None  # instead of email/password, once Metabase is set up
    metabase_first_name: str = "Tower"
    metabase_last_name: str = "Ops"
    metabase_site_name: str = "Perps Ops Control Tower"
    # The database as Metabase's container sees it, and the read-only login dashboards use.
    metabase_db_host: str
    metabase_db_port: int = Field(default=5432, ge=1, le=65535)
    metabase_db_name: str
    metabase_db_user: str = "tower_readonly"
    metabase_db_ssl: bool = False
    readonly_password: str
    metabase_database_name: str = "Perps Ops (TimescaleDB)"  # the connection's name inside Metabase
    metabase_collection: str = "Perps Ops Control Tower"
    metabase_wait_s: float = Field(default=300, gt=0)  # how long to wait for /api/health

    @field_validator("metabase_url", "metabase_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL, e.g. http://localhost:3000")
        return value.rstrip("/")

    @property
    def public_base(self) -> str:
        return self.metabase_public_url or self.metabase_url

    def check_credentials(self) -> None:
        if self.metabase_api_key:
            return
        if not (self.metabase_email and self.metabase_password):
            raise ConfigError(
                "set TOWER_METABASE_EMAIL and TOWER_METABASE_PASSWORD (the admin to create or log in "
                "as), or TOWER_METABASE_API_KEY once Metabase is set up"
            )
