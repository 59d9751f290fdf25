"""Configuration from the environment: one settings object built at the entry point."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storage.clock import utc_now


class Settings(BaseSettings):
    """Everything spendbot reads from the environment (see the README's Configuration table)."""

    model_config = SettingsConfigDict(env_prefix="SPENDBOT_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///spendbot.db",
        description="Any SQLAlchemy URL; the default is a SQLite file in the working directory.",
    )
    cost_engine: Literal["store", "duckdb", "spark"] = Field(
        default="store",
        description="Where spend questions run: the store, or FOCUS Parquet in place (duckdb, spark).",
    )
    focus_path: str | None = Field(
        default=None,
        description="FOCUS Parquet for the duckdb/spark cost engines: a folder, file, glob or s3:// URL.",
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
    model: str = Field(
        default="claude-sonnet-5-5",
        description="Anthropic model id for the LLM tool layer (SPENDBOT_MODEL).",
    )
    llm_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds one Messages API request may take before it is retried or given up.",
    )
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a request on 408/409/429/5xx/529 and connection errors.",
    )

    scheduler: bool = Field(
        default=True,
        description="on|off: whether `spendbot serve` runs scheduled digests, scans and checks.",
    )
    alert_channel: str | None = Field(
        default=None,
        description="Target (slack:#finops) for budget alerts when neither budget nor owner has one.",
    )
    delivery_retention_hours: int = Field(
        default=48,
        ge=2,
        description="Hours a Slack/Teams delivery claim is kept: past every platform retry (~1 h).",
    )
    host: str = Field(default="127.0.0.1", description="Address `spendbot serve` binds.")
    port: int = Field(default=3978, ge=0, le=65535, description="Port `spendbot serve` binds.")
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "SPENDBOT_SLACK_BOT_TOKEN"),
        description="xoxb- token; with the signing secret it turns the Slack endpoint on.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "SPENDBOT_SLACK_SIGNING_SECRET"),
        description="Verifies every request Slack sends (HMAC v0).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "SPENDBOT_SLACK_APP_TOKEN"),
        description="xapp- token: Slack over Socket Mode instead of HTTP.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base URL (tests point it at a fake on 127.0.0.1).",
    )
    slack_channels: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated channel ids the bot answers in; empty: every channel.",
    )
    slack_teams: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated workspace (team) ids the bot answers; empty: any.",
    )
    microsoft_app_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MICROSOFT_APP_ID", "SPENDBOT_MICROSOFT_APP_ID"),
        description="Teams bot's app id; unset: /api/messages takes unauthenticated loopback calls.",
    )
    microsoft_app_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MICROSOFT_APP_PASSWORD", "SPENDBOT_MICROSOFT_APP_PASSWORD"),
        description="Client secret of the Teams bot's app registration.",
    )
    microsoft_app_tenant_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "MICROSOFT_APP_TENANT_ID", "SPENDBOT_MICROSOFT_APP_TENANT_ID"
        ),
        description="Entra ID tenant of a SingleTenant bot.",
    )
    microsoft_app_type: str = Field(
        default="MultiTenant",
        validation_alias=AliasChoices("MICROSOFT_APP_TYPE", "SPENDBOT_MICROSOFT_APP_TYPE"),
        description="MultiTenant or SingleTenant (then the tenant id is required).",
    )
    link_domains: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated domains whose links replies may carry; others are defanged.",
    )

    # Connectors (`spendbot sync`): each source is on when its key or location is set.
    openai_admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_ADMIN_KEY", "SPENDBOT_OPENAI_ADMIN_KEY"),
        description="OpenAI admin key (usage read scope): turns the OpenAI connector on.",
    )
    openai_admin_url: str = Field(
        default="https://api.openai.com", description="OpenAI API base URL, without /v1."
    )
    openai_organization_id: str = Field(
        default="openai", description="BillingAccountId of OpenAI rows (your org-... id)."
    )
    anthropic_admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_ADMIN_KEY", "SPENDBOT_ANTHROPIC_ADMIN_KEY"),
        description="Anthropic Admin API key (sk-ant-admin...): turns the Anthropic connector on.",
    )
    anthropic_admin_url: str = Field(
        default="https://api.anthropic.com", description="Anthropic API base URL, without /v1."
    )
    anthropic_organization_id: str = Field(
        default="anthropic", description="BillingAccountId of Anthropic rows (your org id)."
    )
    aws_export_uri: str | None = Field(
        default=None,
        description="s3://BUCKET/PREFIX/EXPORT-NAME of an AWS Data Export (FOCUS or CUR 2.0).",
    )
    aws_cost_explorer: bool = Field(
        default=False,
        description="Pull daily spend from Cost Explorer (for accounts without exports).",
    )
    aws_cost_explorer_tag_key: str = Field(
        default="team", description="Tag key Cost Explorer spend is broken down by; empty: none."
    )
    aws_billing_account_id: str | None = Field(
        default=None, description="Payer account id for Cost Explorer rows; default: the caller's."
    )
    aws_anomaly_detection: bool = Field(
        default=False,
        description="Show AWS Cost Anomaly Detection's anomalies beside spendbot's and send it "
        "alert feedback (boto3 credential chain; ce:GetAnomalies, ce:ProvideAnomalyFeedback).",
    )
    gcp_export_folder: str | None = Field(
        default=None,
        description="Folder (or gcsfuse mount) the GCP FOCUS view is exported to: gcp-exports.",
    )
    azure_export_folder: str | None = Field(
        default=None,
        description="Folder (or blobfuse2 mount) of an Azure FOCUS cost export: azure-exports.",
    )
    onprem_gpus: bool = Field(
        default=False, description="Price on-prem GPU time from agent samples: onprem-gpus."
    )
    onprem_gpu_price_table: str | None = Field(
        default=None, description="CSV or YAML of $/GPU-hour by GPU model; default: built-in."
    )
    onprem_gpu_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated hosts priced as on-prem even though they have an instance id.",
    )
    onprem_gpu_max_gap: float = Field(
        default=120.0, gt=0, description="Most seconds one GPU sample covers (2x agent interval)."
    )
    onprem_billing_account_id: str = Field(
        default="on-prem", description="BillingAccountId of on-prem GPU rows."
    )
    sync_months: int = Field(
        default=2, ge=1, le=24, description="Whole months each sync replaces, ending this month."
    )
    connector_retries: int = Field(
        default=4, ge=0, le=10, description="Retries per request on 429/5xx, with backoff."
    )
    connector_backoff: float = Field(
        default=0.5, ge=0, description="Base seconds of exponential backoff between retries."
    )

    # Idle GPUs (skills/gpu_*.py, `spendbot agent`).
    gpu_aws_regions: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated AWS regions whose EC2 GPU instances are watched; empty: none.",
    )
    gpu_idle_threshold_pct: float = Field(
        default=5.0, ge=0, le=100, description="A GPU below this utilization (%) counts as idle."
    )
    gpu_idle_window_minutes: int = Field(
        default=60, ge=5, description="Minutes a GPU must stay idle before it is proposed."
    )
    gpu_keep_tag: str = Field(
        default="spendbot:keep=true", description="KEY=VALUE tag that keeps an instance off lists."
    )
    gpu_hibernate: bool = Field(
        default=False, description="Hibernate, not stop, instances configured for hibernation."
    )
    gpu_stop_hook: str | None = Field(
        default=None,
        description="Command run as `COMMAND HOST` to stop an idle on-premises GPU host.",
    )
    gpu_owner_deadline_minutes: int = Field(
        default=120, ge=1, description="Minutes owners have to decide a stop request."
    )
    gpu_approvers_channel: str | None = Field(
        default=None,
        description="Where stop requests go past the owner deadline, e.g. slack:#finops.",
    )
    gpu_cpu_fallback: bool = Field(
        default=True,
        description="Judge EC2 GPU instances without GPU metrics by CPU and network use.",
    )
    gpu_sagemaker_endpoints: Literal["off", "scale-to-zero", "delete"] = Field(
        default="off",
        description="What an approved stop does to an idle SageMaker GPU endpoint; off: list only.",
    )
    agent_tokens: SecretStr | None = Field(
        default=None,
        description="Comma-separated bearer tokens GPU agents push with; unset: /api/gpu-metrics off.",
    )

    @field_validator(
        "slack_channels",
        "slack_teams",
        "link_domains",
        "gpu_aws_regions",
        "onprem_gpu_hosts",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("now")
    @classmethod
    def _as_naive_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def current_time(self) -> datetime:
        """The pinned time when SPENDBOT_NOW is set, else the real clock (naive UTC)."""
        return self.now or utc_now()
