"""What a GPU machine costs per hour: its own billing rows first, else an on-demand price table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from storage.gpu_telemetry import resource_hourly_cost

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


GPUS_PER_INSTANCE: dict[str, int] = {
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    "g5.12xlarge": 4,
    "g5.24xlarge": 4,
    "g5.48xlarge": 8,
    "g6.12xlarge": 4,
    "g6.24xlarge": 4,
    "g6.48xlarge": 8,
}
"""GPUs in each multi-GPU AWS instance type; other g4dn/g5/g6 sizes have one."""


def gpu_count(instance_type: str) -> int:
    """GPUs in an instance type (SageMaker ``ml.`` names too); one when the type is not listed."""
    return GPUS_PER_INSTANCE.get(instance_type.removeprefix("ml."), 1)
