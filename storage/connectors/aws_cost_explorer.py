"""AWS Cost Explorer GetCostAndUsage (daily) mapped to FOCUS, for accounts without exports.

Cost Explorer groups by at most two keys, so spendbot asks once grouped by linked account (for
the accounts and their names), then once per linked account grouped by service and the tag key.
What Cost Explorer cannot provide stays null: resources, regions, SKUs, prices and quantities,
list and contracted cost; credits and refunds are netted into each service's cost; every row
is a Usage charge except the "Tax" service. Each request costs $0.01 (AWS list price).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import boto3
import botocore.config
import botocore.exceptions
import pandas as pd

from storage.connectors.base import ConnectorError, daily_periods, focus_frame, month_end

SOURCE = "aws cost explorer"


@dataclass(frozen=True)
class CostExplorerConfig:
    """Which tag key to break spend down by, and whose bill it is."""

    tag_key: str | None = "team"
    billing_account_id: str | None = None  # default: the caller's account (STS)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    max_attempts: int = 5


def _client(config: CostExplorerConfig, service: str):
    return boto3.client(
        service,
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": config.max_attempts}
        ),
    )


def _pages(client, request: dict) -> Iterator[dict]:
    token = None
    while True:
        response = client.get_cost_and_usage(
            **request, **({"NextPageToken": token} if token else {})
        )
        yield response
        token = response.get("NextPageToken")
        if not token:
            return


def _amount(metrics: dict, name: str) -> tuple[float, str]:
    metric = metrics.get(name) or {}
    return float(metric.get("Amount") or 0), str(metric.get("Unit") or "USD")


def fetch_cost_explorer(
    config: CostExplorerConfig, months: list[date], now: datetime
) -> pd.DataFrame:
    """Daily cost by linked account, service and tag for `months`, as one FOCUS frame."""
    try:
        ce = _client(config, "ce")
        payer = config.billing_account_id or _client(config, "sts").get_caller_identity()["Account"]
        rows: list[dict[str, object]] = []
        for start in months:
            period = {"Start": start.isoformat(), "End": month_end(start, now).isoformat()}
            base = {
                "TimePeriod": period,
                "Granularity": "DAILY",
                "Metrics": ["UnblendedCost", "AmortizedCost"],
            }
            names: dict[str, str | None] = {}
            for page in _pages(
                ce, {**base, "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}]}
            ):
                for attribute in page.get("DimensionValueAttributes", []):
                    names[attribute["Value"]] = attribute.get("Attributes", {}).get("description")
                for result in page.get("ResultsByTime", []):
                    for group in result.get("Groups", []):
                        names.setdefault(group["Keys"][0], None)
            second = (
                {"Type": "TAG", "Key": config.tag_key}
                if config.tag_key
                else {"Type": "DIMENSION", "Key": "SERVICE"}
            )
            for account in sorted(names):
                request = {
                    **base,
                    "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, second]
                    if config.tag_key
                    else [second],
                    "Filter": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account]}},
                }
                for page in _pages(ce, request):
                    rows.extend(_rows(page, payer, account, names[account], config.tag_key))
    except botocore.exceptions.ClientError as error:
        raise ConnectorError(
            f"AWS Cost Explorer: {error}",
            "the reader needs ce:GetCostAndUsage (and sts:GetCallerIdentity)",
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise ConnectorError(f"AWS Cost Explorer: {error}") from None
    return focus_frame(rows)


def _rows(
    page: dict, payer: str, account: str, account_name: str | None, tag_key: str | None
) -> Iterator[dict[str, object]]:
    for result in page.get("ResultsByTime", []):
        day = date.fromisoformat(result["TimePeriod"]["Start"])
        for group in result.get("Groups", []):
            keys = group["Keys"]
            service = keys[0]
            tags = None
            if tag_key and len(keys) > 1:
                # Tag group keys read "team$research"; "team$" means untagged.
                value = keys[1].partition("$")[2]
                tags = json.dumps({tag_key: value}) if value else None
            billed, currency = _amount(group.get("Metrics", {}), "UnblendedCost")
            effective, _ = _amount(group.get("Metrics", {}), "AmortizedCost")
            yield {
                **daily_periods(day),
                "ProviderName": "AWS",
                "PublisherName": "AWS",
                "InvoiceIssuerName": "Amazon Web Services, Inc.",
                "BillingAccountId": payer,
                "BillingCurrency": currency,
                "SubAccountId": account,
                "SubAccountName": account_name,
                "ChargeCategory": "Tax" if service == "Tax" else "Usage",
                "ChargeDescription": f"Cost Explorer: {service}",
                "BilledCost": billed,
                "EffectiveCost": effective,
                "ServiceName": service,
                "Tags": tags,
            }
