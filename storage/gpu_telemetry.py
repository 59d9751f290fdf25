"""GPU samples in the store: written by agents and cloud-metric reads, read by the idle policy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, field_validator
from sqlalchemy import Connection, Engine, delete, func, insert, or_, select

from storage.models import cost_line_items, gpu_samples

HOUR_UNITS = ("hours", "hour", "hrs")
SAMPLE_COLUMNS = tuple(column.name for column in gpu_samples.columns if column.name != "id")


@dataclass(frozen=True)
class GpuSample:
    """One stored sample of one GPU, as the idle policy reads it."""

    host: str
    instance_id: str | None
    gpu_index: int
    sampled_at: datetime
    utilization_pct: float
    process_count: int
    processes: tuple[str, ...] | None
    source: str


def insert_samples(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert sample rows (column names of `gpu_samples`); how many were written."""
    values = [{name: row.get(name) for name in SAMPLE_COLUMNS} for row in rows]
    if values:
        connection.execute(insert(gpu_samples), values)
    return len(values)


def replace_samples(
    connection: Connection,
    instance_id: str,
    source: str,
    start: datetime,
    end: datetime,
    rows: Iterable[Mapping[str, Any]],
) -> int:
    """Replace one instance's samples from `source` in [start, end]: re-reading is idempotent."""
    connection.execute(
        delete(gpu_samples).where(
            gpu_samples.c.instance_id == instance_id,
            gpu_samples.c.source == source,
            gpu_samples.c.sampled_at >= start,
            gpu_samples.c.sampled_at <= end,
        )
    )
    return insert_samples(connection, rows)


def _processes(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(str(item.get("name", "")) for item in json.loads(value))


def samples_for(engine: Engine, key: str, since: datetime, until: datetime) -> list[GpuSample]:
    """Samples of the machine `key` (an instance id or, for on-premises hosts, a host name)."""
    statement = (
        select(gpu_samples)
        .where(
            or_(gpu_samples.c.instance_id == key, gpu_samples.c.host == key),
            gpu_samples.c.sampled_at >= since,
            gpu_samples.c.sampled_at <= until,
        )
        .order_by(gpu_samples.c.sampled_at, gpu_samples.c.gpu_index)
    )
    with engine.connect() as connection:
        return [
            GpuSample(
                host=row.host,
                instance_id=row.instance_id,
                gpu_index=row.gpu_index,
                sampled_at=row.sampled_at,
                utilization_pct=row.utilization_pct,
                process_count=row.process_count,
                processes=_processes(row.processes_json),
                source=row.source,
            )
            for row in connection.execute(statement)
        ]


def agent_hosts(engine: Engine, since: datetime) -> dict[str, str | None]:
    """Hosts an agent reported since `since`, with the instance id they run on (None on-prem)."""
    statement = (
        select(gpu_samples.c.host, gpu_samples.c.instance_id)
        .where(gpu_samples.c.source == "nvml", gpu_samples.c.sampled_at >= since)
        .distinct()
    )
    with engine.connect() as connection:
        return {row.host: row.instance_id for row in connection.execute(statement)}


def resource_hourly_cost(
    engine: Engine, resource_id: str, since: datetime
) -> tuple[float, str] | None:
    """The resource's effective cost per usage hour in its billing rows since `since`, if any.

    Only hourly usage rows count (ConsumedUnit hours), so storage and data transfer billed to
    the same resource do not inflate the machine's price.
    """
    hourly = func.lower(cost_line_items.c.consumed_unit).in_(HOUR_UNITS)
    statement = select(
        func.sum(cost_line_items.c.effective_cost).label("cost"),
        func.sum(cost_line_items.c.consumed_quantity).label("hours"),
        func.max(cost_line_items.c.billing_currency).label("currency"),
    ).where(
        cost_line_items.c.resource_id == resource_id,
        cost_line_items.c.charge_category == "Usage",
        cost_line_items.c.charge_period_start >= since,
        hourly,
    )
    with engine.connect() as connection:
        row = connection.execute(statement).one()
    if not row.hours or row.cost is None:
        return None
    return float(row.cost) / float(row.hours), str(row.currency)


class ProcessRecord(BaseModel):
    """A process holding a GPU, as an agent reports it."""

    pid: int
    name: str = Field(max_length=200)
    used_memory_mb: float | None = None


class SampleRecord(BaseModel):
    """One sample as agents send it (JSON) and the store keeps it; validated before writing."""

    host: str = Field(min_length=1, max_length=200)
    instance_id: str | None = Field(None, max_length=100)
    provider: str | None = Field(None, max_length=100)
    gpu_index: int = Field(ge=0, le=1024)
    gpu_uuid: str | None = Field(None, max_length=100)
    gpu_model: str | None = Field(None, max_length=200)
    sampled_at: datetime
    utilization_pct: float = Field(ge=0, le=100)
    memory_used_mb: float | None = Field(None, ge=0)
    memory_total_mb: float | None = Field(None, ge=0)
    power_w: float | None = Field(None, ge=0)
    temperature_c: float | None = None
    process_count: int = Field(0, ge=0)
    processes_json: str | None = Field(None, max_length=100_000)
    source: str = Field("nvml", max_length=50)

    @field_validator("sampled_at")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    @field_validator("processes_json")
    @classmethod
    def _process_list(cls, value: str | None) -> str | None:
        if value is not None:
            TypeAdapter(list[ProcessRecord]).validate_json(value)
        return value


def validated_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows checked and typed through `SampleRecord` (ValidationError when one is not valid)."""
    return [SampleRecord.model_validate(row).model_dump() for row in rows]


@dataclass(frozen=True)
class GpuResourceCost:
    """A GPU machine's hourly usage cost in a period, from its billing rows."""

    resource_id: str
    instance_type: str
    cost: float
    hours: float
    currency: str


def gpu_resource_costs(engine: Engine, start: datetime, end: datetime) -> list[GpuResourceCost]:
    """Per GPU machine (`is_gpu` rows with a resource id): hourly usage cost and hours."""
    items = cost_line_items.c
    statement = (
        select(
            items.resource_id,
            func.max(items.gpu_instance_type).label("instance_type"),
            func.sum(items.effective_cost).label("cost"),
            func.sum(items.consumed_quantity).label("hours"),
            func.max(items.billing_currency).label("currency"),
        )
        .where(
            items.is_gpu.is_(True),
            items.resource_id.is_not(None),
            items.charge_category == "Usage",
            func.lower(items.consumed_unit).in_(HOUR_UNITS),
            items.charge_period_start >= start,
            items.charge_period_start < end,
        )
        .group_by(items.resource_id)
        .order_by(items.resource_id)
    )
    with engine.connect() as connection:
        return [
            GpuResourceCost(
                row.resource_id,
                row.instance_type,
                float(row.cost or 0),
                float(row.hours or 0),
                row.currency,
            )
            for row in connection.execute(statement)
        ]


def mean_utilization(engine: Engine, start: datetime, end: datetime) -> dict[str, float]:
    """Mean GPU utilization (%) per instance id over every sample of every GPU in the period."""
    statement = (
        select(gpu_samples.c.instance_id, func.avg(gpu_samples.c.utilization_pct).label("mean"))
        .where(
            gpu_samples.c.instance_id.is_not(None),
            gpu_samples.c.sampled_at >= start,
            gpu_samples.c.sampled_at < end,
        )
        .group_by(gpu_samples.c.instance_id)
    )
    with engine.connect() as connection:
        return {row.instance_id: float(row.mean) for row in connection.execute(statement)}


def delete_host_samples(connection: Connection, host: str) -> None:
    """Forget every sample an agent reported for `host`."""
    connection.execute(delete(gpu_samples).where(gpu_samples.c.host == host))


def host_gpu_models(engine: Engine, host: str, since: datetime) -> dict[int, str | None]:
    """The GPUs `host` reported since `since`: index to model name (None when not reported)."""
    statement = (
        select(gpu_samples.c.gpu_index, func.max(gpu_samples.c.gpu_model))
        .where(gpu_samples.c.host == host, gpu_samples.c.sampled_at >= since)
        .group_by(gpu_samples.c.gpu_index)
    )
    with engine.connect() as connection:
        return {index: model for index, model in connection.execute(statement)}
