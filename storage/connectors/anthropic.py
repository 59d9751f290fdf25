"""Anthropic spend from the Admin API cost and usage reports, as daily FOCUS rows.

Money comes from the cost report (`GET /v1/organizations/cost_report`, grouped by workspace and
description, amounts in cents as decimal strings): one FOCUS row per day, workspace and cost
item, the model as SkuId. Token counts come from the messages usage report grouped by workspace,
model, service tier and context window, attached to the cost row of the same token type.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd

from storage.connectors.base import (
    AI_CATEGORY,
    ConnectorError,
    HttpPolicy,
    JsonApi,
    daily_periods,
    focus_frame,
    month_end,
    utc_midnight,
)

PROVIDER = "Anthropic"
SOURCE = "anthropic admin api (cost+usage reports)"
DEFAULT_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
BUCKETS_PER_PAGE = 31

# Usage report fields by the cost report's token_type (and cost_type for server tools).
_TOKEN_FIELDS = {
    "uncached_input_tokens": ("uncached_input_tokens",),
    "output_tokens": ("output_tokens",),
    "cache_read_input_tokens": ("cache_read_input_tokens",),
    "cache_creation.ephemeral_5m_input_tokens": ("cache_creation", "ephemeral_5m_input_tokens"),
    "cache_creation.ephemeral_1h_input_tokens": ("cache_creation", "ephemeral_1h_input_tokens"),
}
# Server tools are billed per workspace without a model: their counts are summed over models.
_TOOL_FIELDS = {"web_search": ("server_tool_use", "web_search_requests")}


@dataclass(frozen=True)
class AnthropicConfig:
    """Where and as whom to read: an Admin API key (sk-ant-admin...) and the organization id."""

    admin_key: str
    organization_id: str = "anthropic"
    base_url: str = DEFAULT_URL
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    page_days: int = BUCKETS_PER_PAGE


def _rfc3339(day: date) -> str:
    return utc_midnight(day).strftime("%Y-%m-%dT%H:%M:%SZ")


def _params(
    start: date, end: date, group_by: tuple[str, ...], page_days: int
) -> list[tuple[str, str]]:
    return [
        ("starting_at", _rfc3339(start)),
        ("ending_at", _rfc3339(end)),
        ("bucket_width", "1d"),
        *(("group_by[]", name) for name in group_by),
        ("limit", str(page_days)),
    ]


def _day(bucket: dict) -> date:
    return datetime.fromisoformat(str(bucket["starting_at"]).replace("Z", "+00:00")).date()


def _field(result: dict, path: tuple[str, ...]) -> float:
    value: object = result
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return float(value or 0)


def fetch_anthropic(config: AnthropicConfig, months: list[date], now: datetime) -> pd.DataFrame:
    """Every page of the cost and usage reports for the months in `months`, as one FOCUS frame.

    Raises ConnectorError (before anything is stored) when any page cannot be read.
    """
    api = JsonApi(
        "Anthropic",
        config.base_url,
        {"x-api-key": config.admin_key, "anthropic-version": API_VERSION},
        config.policy,
    )
    costs: list[tuple[date, dict]] = []
    usage: dict[tuple, float] = defaultdict(float)
    try:
        for start in months:
            end = month_end(start, now)
            for page in api.pages(
                "/v1/organizations/cost_report",
                _params(start, end, ("workspace_id", "description"), config.page_days),
            ):
                for bucket in page.get("data", []):
                    costs.extend((_day(bucket), result) for result in bucket.get("results", []))
            for page in api.pages(
                "/v1/organizations/usage_report/messages",
                _params(
                    start,
                    end,
                    ("workspace_id", "model", "service_tier", "context_window"),
                    config.page_days,
                ),
            ):
                for bucket in page.get("data", []):
                    day = _day(bucket)
                    for result in bucket.get("results", []):
                        base = (
                            day,
                            result.get("workspace_id"),
                            result.get("model"),
                            result.get("service_tier"),
                            result.get("context_window"),
                        )
                        for token_type, path in _TOKEN_FIELDS.items():
                            usage[(*base, token_type)] += _field(result, path)
                        for cost_type, path in _TOOL_FIELDS.items():
                            usage[(day, result.get("workspace_id"), cost_type)] += _field(
                                result, path
                            )
    finally:
        api.close()
    return _frame(config, costs, usage)


def _frame(
    config: AnthropicConfig, costs: list[tuple[date, dict]], usage: dict[tuple, float]
) -> pd.DataFrame:
    rows = []
    for day, result in costs:
        try:
            dollars = float(Decimal(str(result.get("amount", "0"))) / 100)
        except InvalidOperation:
            raise ConnectorError(
                f"Anthropic: a cost on {day} is not a number: {result.get('amount')!r}"
            ) from None
        cost_type = result.get("cost_type")
        token_type = result.get("token_type") or cost_type
        model = result.get("model")
        key = (
            day,
            result.get("workspace_id"),
            model,
            result.get("service_tier"),
            result.get("context_window"),
            token_type,
        )
        if cost_type in _TOOL_FIELDS:
            quantity, unit = usage.get((day, result.get("workspace_id"), cost_type)), "Requests"
        else:
            quantity, unit = usage.get(key), "Tokens"
        if quantity is None:
            unit = None
        workspace = result.get("workspace_id")
        sku_price = ":".join(
            str(part)
            for part in (
                model,
                token_type,
                result.get("service_tier"),
                result.get("context_window"),
            )
            if part
        )
        rows.append(
            {
                **daily_periods(day),
                "ProviderName": PROVIDER,
                "PublisherName": PROVIDER,
                "InvoiceIssuerName": PROVIDER,
                "BillingAccountId": config.organization_id,
                "BillingCurrency": str(result.get("currency") or "USD").upper(),
                # A null workspace is the organization's default workspace.
                "SubAccountId": workspace,
                "SubAccountName": None if workspace else "Default workspace",
                "ChargeCategory": "Usage",
                "ChargeFrequency": "Usage-Based",
                "ChargeDescription": result.get("description"),
                "PricingCategory": "Standard",
                "BilledCost": dollars,
                "EffectiveCost": dollars,
                "ContractedCost": dollars,
                "ConsumedQuantity": quantity,
                "ConsumedUnit": unit,
                "ServiceName": "Claude API",
                "ServiceCategory": AI_CATEGORY,
                "SkuId": model or cost_type,
                "SkuPriceId": sku_price or None,
            }
        )
    return focus_frame(rows)
