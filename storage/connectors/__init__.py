"""Connectors that pull spend from providers and load it as FOCUS slices: `sync` runs one.

Each connector fetches every page of the requested whole calendar months first, builds one
FOCUS frame and loads it with one `ingest_frame` call: a month is a (provider, billing account,
billing period) slice, so re-syncing replaces it whole (late restatements included), and a
failure anywhere before the load leaves the store exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from skills.errors import UserError
from storage.connector_status import record_failure, record_success
from storage.connectors.anthropic import SOURCE as ANTHROPIC_SOURCE
from storage.connectors.anthropic import AnthropicConfig, fetch_anthropic
from storage.connectors.aws_cost_explorer import SOURCE as CE_SOURCE
from storage.connectors.aws_cost_explorer import CostExplorerConfig, fetch_cost_explorer
from storage.connectors.aws_exports import AwsExportConfig, fetch_aws_export
from storage.connectors.base import ConnectorError, HttpPolicy, month_starts
from storage.connectors.folder_exports import FolderExportConfig, fetch_folder_export
from storage.connectors.onprem_gpus import (
    OnPremConfig,
    fetch_onprem_gpus,
    price_table,
)
from storage.connectors.openai import SOURCE as OPENAI_SOURCE
from storage.connectors.openai import OpenAIConfig, fetch_openai
from storage.ingest import IngestReport, ingest_frame

SOURCES = (
    "openai",
    "anthropic",
    "aws-exports",
    "aws-cost-explorer",
    "gcp-exports",
    "azure-exports",
    "onprem-gpus",
)

Config = (
    OpenAIConfig
    | AnthropicConfig
    | AwsExportConfig
    | CostExplorerConfig
    | FolderExportConfig
    | OnPremConfig
)

__all__ = [
    "SOURCES",
    "AnthropicConfig",
    "AwsExportConfig",
    "ConnectorError",
    "CostExplorerConfig",
    "FolderExportConfig",
    "OnPremConfig",
    "OpenAIConfig",
    "SyncResult",
    "configured_sources",
    "sync_source",
]


@dataclass
class SyncResult:
    """What one sync did: the months asked for, what was loaded, and how long it took."""

    source: str
    months: list[date]
    report: IngestReport
    seconds: float
    notes: list[str] = field(default_factory=list)


def configured_sources(settings: Any) -> dict[str, Config]:
    """The sources `settings` (bot.settings.Settings) configures, each with its config."""
    policy = HttpPolicy(retries=settings.connector_retries, backoff=settings.connector_backoff)
    found: dict[str, Config] = {}
    if settings.openai_admin_key:
        found["openai"] = OpenAIConfig(
            admin_key=settings.openai_admin_key.get_secret_value(),
            organization_id=settings.openai_organization_id,
            base_url=settings.openai_admin_url,
            policy=policy,
        )
    if settings.anthropic_admin_key:
        found["anthropic"] = AnthropicConfig(
            admin_key=settings.anthropic_admin_key.get_secret_value(),
            organization_id=settings.anthropic_organization_id,
            base_url=settings.anthropic_admin_url,
            policy=policy,
        )
    if settings.aws_export_uri:
        found["aws-exports"] = AwsExportConfig(
            uri=settings.aws_export_uri, max_attempts=settings.connector_retries + 1
        )
    if settings.aws_cost_explorer:
        found["aws-cost-explorer"] = CostExplorerConfig(
            tag_key=settings.aws_cost_explorer_tag_key or None,
            billing_account_id=settings.aws_billing_account_id,
            max_attempts=settings.connector_retries + 1,
        )
    if settings.gcp_export_folder:
        found["gcp-exports"] = FolderExportConfig("gcp", settings.gcp_export_folder)
    if settings.azure_export_folder:
        found["azure-exports"] = FolderExportConfig("azure", settings.azure_export_folder)
    if settings.onprem_gpus:
        found["onprem-gpus"] = OnPremConfig(
            prices=price_table(settings.onprem_gpu_price_table),
            hosts=settings.onprem_gpu_hosts,
            max_gap_seconds=settings.onprem_gpu_max_gap,
            billing_account_id=settings.onprem_billing_account_id,
        )
    return found


def sync_source(
    engine: Engine, name: str, config: Config, *, now: datetime, months: int = 2
) -> SyncResult:
    """Fetch whole months (the current one and `months - 1` before it) and load them at once.

    The outcome is kept in `connector_status`: rows loaded on success, the error on failure
    (written after the failed load has rolled back, so the cost data stays as it was).
    """
    if name not in SOURCES:
        raise UserError(f"unknown source {name!r}", f"choose one of {', '.join(SOURCES)}")
    started = time.monotonic()
    window = month_starts(now, months)
    try:
        frame, source, notes = _fetch(engine, config, window, now)
        if frame.empty:
            report = IngestReport(files=[source])
            notes.append("no rows: the store was left as it was")
        else:
            report = ingest_frame(engine, frame, source)  # loaded_at: the real clock
    except Exception as error:
        record_failure(engine, name, now, str(error) or type(error).__name__)
        raise
    record_success(engine, name, now, report.rows)
    return SyncResult(name, window, report, time.monotonic() - started, notes)


def _fetch(
    engine: Engine, config: Config, window: list[date], now: datetime
) -> tuple[pd.DataFrame, str, list[str]]:
    """The FOCUS frame of `window` from one source, the slices' `source` label, and notes."""
    if isinstance(config, OpenAIConfig):
        return fetch_openai(config, window, now), OPENAI_SOURCE, []
    if isinstance(config, AnthropicConfig):
        return fetch_anthropic(config, window, now), ANTHROPIC_SOURCE, []
    if isinstance(config, AwsExportConfig):
        frame, manifests = fetch_aws_export(config, window)
        notes = [f"read {manifest}" for manifest in manifests]
        return frame, config.source, notes or ["no manifest found for these billing periods"]
    if isinstance(config, FolderExportConfig):
        frame, runs = fetch_folder_export(config, window)
        notes = [f"read {run}" for run in runs]
        return frame, config.source, notes or ["no export run found for these billing periods"]
    if isinstance(config, OnPremConfig):
        frame, notes = fetch_onprem_gpus(engine, config, window, now)
        return frame, "on-prem gpu samples", notes
    return fetch_cost_explorer(config, window, now), CE_SOURCE, []
