"""What a GPU machine costs per hour: its own billing rows first, else an on-demand price table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from storage.connectors.onprem_gpus import price_for
from storage.gpu_counts import gpus_per_instance
from storage.gpu_telemetry import host_gpu_models, resource_hourly_cost

BILLING_LOOKBACK = timedelta(days=30)

ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    # AWS EC2 Linux on-demand list prices, US East (N. Virginia). A fallback only: billing rows
    # carry the price actually paid (discounts, savings plans, other regions).
    "p3.2xlarge": 3.06,
    "p3.8xlarge": 12.24,
    "p3.16xlarge": 24.48,
    "p4d.24xlarge": 32.7726,
    "p5.48xlarge": 55.04,
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176,
    "g4dn.12xlarge": 3.912,
    "g4dn.16xlarge": 4.352,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g5.4xlarge": 1.624,
    "g5.8xlarge": 2.448,
    "g5.12xlarge": 5.672,
    "g5.16xlarge": 4.096,
    "g5.24xlarge": 8.144,
    "g5.48xlarge": 16.288,
    "g6.xlarge": 0.8048,
    "g6.2xlarge": 0.9776,
    "g6.4xlarge": 1.3232,
    "g6.8xlarge": 2.0144,
    "g6.12xlarge": 4.6016,
    "g6.48xlarge": 13.3504,
}

BILLING = "billing"
PRICE_TABLE = "price table"
ONPREM_TABLE = "on-prem price table"


@dataclass(frozen=True)
class HourlyPrice:
    """A machine's cost per hour, its currency, and where the figure came from."""

    amount: float
    currency: str
    source: str


def hourly_price(
    engine: Engine, resource_id: str, instance_type: str | None, now: datetime
) -> HourlyPrice | None:
    """The machine's effective cost per hour over the last 30 days of billing, else list price."""
    billed = resource_hourly_cost(engine, resource_id, now - BILLING_LOOKBACK)
    if billed is not None:
        return HourlyPrice(billed[0], billed[1], BILLING)
    listed = ON_DEMAND_USD_PER_HOUR.get(instance_type or "")
    return HourlyPrice(listed, "USD", PRICE_TABLE) if listed is not None else None


def gpu_count(instance_type: str) -> int:
    """GPUs in an instance type (SageMaker ``ml.`` names too); one when the type is not listed."""
    return gpus_per_instance(instance_type) or 1


def onprem_hourly_price(
    engine: Engine, host: str, prices: dict[str, float], now: datetime
) -> HourlyPrice | None:
    """An on-premises host's cost per hour: each GPU it reported in the last day, priced by model.

    None when a GPU's model has no price, since a partial sum would understate the waste.
    """
    models = host_gpu_models(engine, host, now - timedelta(days=1))
    each = [price_for(model or "", prices) for model in models.values()]
    if not each or any(price is None for price in each):
        return None
    return HourlyPrice(sum(price for price in each if price is not None), "USD", ONPREM_TABLE)
