"""Configuration from the environment: one settings object built at the entry point."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything spendbot reads from the environment (see the README's Configuration table)."""

    model_config = SettingsConfigDict(env_prefix="SPENDBOT_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///spendbot.db",
        description="Any SQLAlchemy URL; the default is a SQLite file in the working directory.",
    )
    now: datetime | None = Field(
        default=None,
        description="Pins 'now' (ISO date-time, UTC unless it has an offset) for dates and schedules.",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "SPENDBOT_ANTHROPIC_API_KEY"),
        description="Unset: the offline router answers.",
    )

    @field_validator("now")
    @classmethod
    def _as_naive_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def current_time(self) -> datetime:
        """The pinned time when SPENDBOT_NOW is set, else the real clock (naive UTC)."""
        return self.now or datetime.now(UTC).replace(tzinfo=None)
