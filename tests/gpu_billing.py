"""FOCUS billing rows of GPU instances, shared by the GPU tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta


def usage_row(
    resource: str,
    day: datetime,
    cost: float,
    hours: float,
    *,
    team: str,
    description: str,
    account: str = "111",
) -> dict:
    """One day of an EC2 instance's usage, charged `cost` for `hours`, tagged with its team."""
    return {
        "BillingAccountId": account,
        "BillingCurrency": "USD",
        "BillingPeriodStart": day.replace(day=1, hour=0, minute=0),
        "ChargePeriodStart": day,
        "ChargePeriodEnd": day + timedelta(days=1),
        "ChargeCategory": "Usage",
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ConsumedQuantity": hours,
        "ConsumedUnit": "Hours",
        "ProviderName": "AWS",
        "ServiceName": "Amazon Elastic Compute Cloud",
        "ResourceId": resource,
        "ChargeDescription": description,
        "Tags": json.dumps({"team": team}),
    }
