"""Settings of the jobs service from the environment (TOWER_*); thresholds live in the rules file."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.sinks import pagerduty


class JobsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_", extra="ignore")

    rules_file: str | None = None  # TOWER_RULES_FILE, merged over the defaults
    alert_webhook_url: str | None = None  # TOWER_ALERT_WEBHOOK_URL: generic JSON POST
    alert_slack_url: str | None = None  # TOWER_ALERT_SLACK_URL: Slack-compatible {"text": ...}
    alert_pagerduty_routing_key: str | None = None  # TOWER_ALERT_PAGERDUTY_ROUTING_KEY: Events API v2
    alert_pagerduty_url: str = pagerduty.DEFAULT_URL  # TOWER_ALERT_PAGERDUTY_URL (tests: a loopback receiver)
    metabase_public_url: str | None = "http://localhost:3000"  # TOWER_METABASE_PUBLIC_URL: dashboard links
    heartbeat_url: str | None = None  # TOWER_HEARTBEAT_URL: requested every minute (dead-man's switch)
    jobs_catchup: timedelta = timedelta(hours=2)  # TOWER_JOBS_CATCHUP: how far back a start scores
    jobs_settle_s: float = Field(10.0, ge=0, le=50)  # TOWER_JOBS_SETTLE_S: wait after a minute closes
    jobs_heartbeat_s: float = Field(30.0, ge=1)  # TOWER_JOBS_HEARTBEAT_S
    jobs_retention_every: timedelta = timedelta(hours=1)  # TOWER_JOBS_RETENTION_EVERY (Apache license)
    jobs_runs_keep: timedelta = timedelta(days=14)  # TOWER_JOBS_RUNS_KEEP: prune ops.job_runs
    alert_timeout_s: float = Field(5.0, gt=0, le=60)  # TOWER_ALERT_TIMEOUT_S: per HTTP attempt
    alert_max_attempts: int = Field(4, ge=1, le=20)  # TOWER_ALERT_MAX_ATTEMPTS
    alert_backoff_s: float = Field(1.0, ge=0, le=60)  # TOWER_ALERT_BACKOFF_S: doubles per retry

    @field_validator("jobs_catchup", "jobs_retention_every", "jobs_runs_keep", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str) and value.strip()[-1:].isalpha():
            from tower.durations import parse_duration

            parsed = parse_duration(value)
            if parsed is None:
                raise ValueError("must be a duration such as 2h, not off")
            return parsed
        return value

    @field_validator("jobs_catchup")
    @classmethod
    def _catchup_covers_a_closed_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=2):
            raise ValueError("must be at least 2m, or no closed minute is ever inside the window")
        return value

    @field_validator("alert_webhook_url", "alert_slack_url", "alert_pagerduty_url", "heartbeat_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    def sinks(self) -> dict[str, str]:
        """Configured sink name -> URL."""
        found = {
            "webhook": self.alert_webhook_url,
            "slack": self.alert_slack_url,
            "pagerduty": self.alert_pagerduty_url if self.alert_pagerduty_routing_key else None,
        }
        return {name: url for name, url in found.items() if url}

    def sink_secrets(self) -> dict[str, str]:
        """Sink name -> what its payload must carry to be accepted (PagerDuty's routing key)."""
        key = self.alert_pagerduty_routing_key
        return {"pagerduty": key} if key else {}
