"""GPU storage on SQLite and PostgreSQL: sample replacement, billed hourly price, savings ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from storage.connectors.base import focus_frame
from storage.gpu_savings import Stop, daily_cost, list_stops, record
from storage.gpu_telemetry import replace_samples, resource_hourly_cost, samples_for
from storage.ingest import ingest_frame
from storage.models import gpu_samples

NOW = datetime(2026, 11, 29, 12, 0)


def row(minutes_ago: int, pct: float) -> dict:
    return {
        "host": "i-1",
        "instance_id": "i-1",
        "gpu_index": 0,
        "sampled_at": NOW - timedelta(minutes=minutes_ago),
        "utilization_pct": pct,
        "process_count": 0,
        "source": "cloudwatch",
    }


def test_rereading_cloud_samples_replaces_them(engine: Engine) -> None:
    start = NOW - timedelta(hours=1)
    for value in (1.0, 2.0):
        with engine.begin() as connection:
            replace_samples(
                connection, "i-1", "cloudwatch", start, NOW, [row(m, value) for m in (0, 30)]
            )
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(gpu_samples)).scalar() == 2
    found = samples_for(engine, "i-1", start, NOW)
    assert [(s.utilization_pct, s.processes) for s in found] == [(2.0, None), (2.0, None)]


def billed(day: datetime, cost: float, quantity: float, unit: str, account: str = "1") -> dict:
    return {
        "BillingAccountId": account,
        "BillingCurrency": "USD",
        "BillingPeriodStart": day.replace(day=1),
        "ChargePeriodStart": day,
        "ChargePeriodEnd": day + timedelta(days=1),
        "ChargeCategory": "Usage",
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "ProviderName": "AWS",
        "ResourceId": "i-1",
    }


def test_billed_hourly_price_and_daily_cost(engine: Engine) -> None:
    days = [datetime(2026, 11, d) for d in (20, 21)]
    rows = [billed(day, 24.0, 24.0, "Hours") for day in days]
    rows.append(billed(days[0], 5.0, 100.0, "GB-Mo"))  # the machine's disk: not its hourly price
    ingest_frame(engine, focus_frame(rows), "t")
    assert resource_hourly_cost(engine, "i-1", NOW - timedelta(days=30)) == (1.0, "USD")
    assert resource_hourly_cost(engine, "i-2", NOW - timedelta(days=30)) is None
    assert daily_cost(engine, "i-1", days[0], NOW) == {
        date(2026, 11, 20): 29.0,
        date(2026, 11, 21): 24.0,
    }


def test_the_ledger_keeps_one_row_per_action_and_machine(engine: Engine) -> None:
    stop = Stop(
        7, "i-1", "AWS", "g5.xlarge", "us-east-1", "search", NOW, 1.006, "USD", "price table"
    )
    with engine.begin() as connection:
        record(connection, stop)
    assert list_stops(engine) == [stop]
    assert list_stops(engine, since=NOW + timedelta(seconds=1)) == []
    with pytest.raises(IntegrityError), engine.begin() as connection:
        record(connection, stop)
