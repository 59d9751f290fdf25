"""OpenAI spend from the organization Costs and Usage APIs, as daily FOCUS rows.

Money comes from the Costs API (`GET /v1/organization/costs`, grouped by project and line
item): one FOCUS row per day, project and line item, the line item's model as SkuId. Quantities
come from the Usage API (completions, embeddings, images, audio) grouped by project and model,
and are attached to the cost row of the same day, project, model and kind (input, cached input,
output). A line item whose quantity cannot be placed unambiguously keeps ConsumedQuantity null.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

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

PROVIDER = "OpenAI"
SOURCE = "openai costs+usage api"
DEFAULT_URL = "https://api.openai.com"
BUCKETS_PER_PAGE = 31

# Usage endpoints and how their results become (kind, quantity, unit) for a model: a kind of
# None matches any line item of that model (images and audio have one line item per model).
_USAGE_ENDPOINTS = ("completions", "embeddings", "images", "audio_speeches", "audio_transcriptions")


@dataclass(frozen=True)
class OpenAIConfig:
    """Where and as whom to read: an organization admin key (only GETs costs and usage) and org id."""

    admin_key: str
    organization_id: str = "openai"
    base_url: str = DEFAULT_URL
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    page_days: int = BUCKETS_PER_PAGE


def _quantities(endpoint: str, result: dict) -> list[tuple[str | None, float, str]]:
    def number(name: str) -> float:
        return float(result.get(name) or 0)

    if endpoint == "completions":
        cached = number("input_cached_tokens")
        return [
            ("input", number("input_tokens") - cached, "Tokens"),
            ("cached input", cached, "Tokens"),
            ("output", number("output_tokens"), "Tokens"),
        ]
    if endpoint == "embeddings":
        return [("input", number("input_tokens"), "Tokens")]
    if endpoint == "images":
        return [(None, number("images"), "Images")]
    if endpoint == "audio_speeches":
        return [(None, number("characters"), "Characters")]
    return [(None, number("seconds"), "Seconds")]


def _line_item(text: str | None) -> tuple[str | None, str | None]:
    """Split a Costs API line item such as 'gpt-4o-2024-08-06, input' into model and kind."""
    if not text:
        return None, None
    model, sep, kind = text.rpartition(", ")
    if not sep:
        return text.strip(), None
    return model.strip(), kind.strip().lower()


def _day(bucket: dict) -> date:
    return datetime.fromtimestamp(int(bucket["start_time"]), UTC).date()


def _params(
    start: date, end: date, group_by: tuple[str, ...], page_days: int
) -> list[tuple[str, str]]:
    return [
        ("start_time", str(int(utc_midnight(start).timestamp()))),
        ("end_time", str(int(utc_midnight(end).timestamp()))),
        ("bucket_width", "1d"),
        *(("group_by", name) for name in group_by),
        ("limit", str(page_days)),
    ]


def fetch_openai(config: OpenAIConfig, months: list[date], now: datetime) -> pd.DataFrame:
    """Every page of costs and usage for the whole months in `months`, as one FOCUS frame.

    Raises ConnectorError (before anything is stored) when any page cannot be read.
    """
    api = JsonApi(
        "OpenAI", config.base_url, {"Authorization": f"Bearer {config.admin_key}"}, config.policy
    )
    try:
        costs: list[tuple[date, dict]] = []
        usage: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
        for start in months:
            end = month_end(start, now)
            for page in api.pages(
                "/v1/organization/costs",
                _params(start, end, ("project_id", "line_item"), config.page_days),
            ):
                for bucket in page.get("data", []):
                    costs.extend((_day(bucket), result) for result in bucket.get("results", []))
            for endpoint in _USAGE_ENDPOINTS:
                for page in api.pages(
                    f"/v1/organization/usage/{endpoint}",
                    _params(start, end, ("project_id", "model"), config.page_days),
                ):
                    for bucket in page.get("data", []):
                        day = _day(bucket)
                        for result in bucket.get("results", []):
                            model = (result.get("model") or "").lower()
                            for kind, quantity, unit in _quantities(endpoint, result):
                                key = (day, result.get("project_id"), model, kind)
                                usage[key].append((quantity, unit))
    finally:
        api.close()
    return _frame(config, costs, usage)


def _frame(
    config: OpenAIConfig,
    costs: list[tuple[date, dict]],
    usage: dict[tuple, list[tuple[float, str]]],
) -> pd.DataFrame:
    # A usage key may be claimed by one cost row only, or the quantity would count twice.
    claims: dict[tuple, int] = defaultdict(int)
    keyed = []
    for day, result in costs:
        model, kind = _line_item(result.get("line_item"))
        project = result.get("project_id")
        candidates = [
            (day, project, (model or "").lower(), kind),
            (day, project, (model or "").lower(), None),
        ]
        key = next((candidate for candidate in candidates if candidate in usage), None)
        if key is not None:
            claims[key] += 1
        keyed.append((day, result, model, key))
    rows = []
    for day, result, model, key in keyed:
        amount = result.get("amount") or {}
        try:
            value = float(Decimal(str(amount.get("value", 0))))
        except ArithmeticError:
            raise ConnectorError(f"OpenAI: a cost on {day} is not a number: {amount!r}") from None
        quantity = unit = None
        if key is not None and claims[key] == 1:
            quantity = sum(q for q, _ in usage[key])
            unit = usage[key][0][1]
        project = result.get("project_id")
        rows.append(
            {
                **daily_periods(day),
                "ProviderName": PROVIDER,
                "PublisherName": PROVIDER,
                "InvoiceIssuerName": PROVIDER,
                "BillingAccountId": config.organization_id,
                "BillingCurrency": str(amount.get("currency") or "usd").upper(),
                "SubAccountId": project,
                "SubAccountName": result.get("project_name"),
                "ChargeCategory": "Usage",
                "ChargeClass": None,
                "ChargeFrequency": "Usage-Based",
                "ChargeDescription": result.get("line_item"),
                "PricingCategory": "Standard",
                "BilledCost": value,
                "EffectiveCost": value,
                "ContractedCost": value,
                "ConsumedQuantity": quantity,
                "ConsumedUnit": unit,
                "ServiceName": "OpenAI API",
                "ServiceCategory": AI_CATEGORY,
                "SkuId": model,
                "SkuPriceId": result.get("line_item"),
            }
        )
    return focus_frame(rows)
