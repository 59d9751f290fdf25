"""The GPU savings ledger (each stop, its hourly cost, billed cost around it) and owners' snoozes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, insert, select

from storage.costs import day_bucket
from storage.models import cost_line_items, gpu_savings, gpu_snoozes


@dataclass(frozen=True)
class Stop:
    """One recorded stop of a GPU machine."""

    action_id: int | None
    instance_id: str
    provider: str
    instance_type: str | None
    region: str | None
    owner: str | None
    stopped_at: datetime
    hourly_cost: float
    currency: str
    price_source: str


@dataclass(frozen=True)
class Snooze:
    """An owner keeping a machine off idle lists and stop plans until `until`."""

    instance_id: str
    until: datetime
    reason: str
    kept_by: str
    kept_at: datetime


def record(connection: Connection, entry: Stop | Snooze) -> None:
    """Add a stop to the ledger (once per action and machine), or an owner's snooze."""
    table = gpu_savings if isinstance(entry, Stop) else gpu_snoozes
    connection.execute(insert(table).values(**asdict(entry)))


def list_stops(engine: Engine, since: datetime | None = None) -> list[Stop]:
    """Recorded stops, oldest first, optionally only those since `since`."""
    statement = select(gpu_savings).order_by(gpu_savings.c.stopped_at, gpu_savings.c.id)
    if since is not None:
        statement = statement.where(gpu_savings.c.stopped_at >= since)
    with engine.connect() as connection:
        return [
            Stop(**{key: value for key, value in row._mapping.items() if key != "id"})
            for row in connection.execute(statement)
        ]


def daily_cost(
    engine: Engine, resource_id: str, start: datetime, end: datetime
) -> dict[date, float]:
    """The resource's effective cost per day in [start, end), from its billing rows."""
    day = day_bucket(cost_line_items.c.charge_period_start).label("day")
    statement = (
        select(day, func.sum(cost_line_items.c.effective_cost).label("cost"))
        .where(
            cost_line_items.c.resource_id == resource_id,
            cost_line_items.c.charge_period_start >= start,
            cost_line_items.c.charge_period_start < end,
        )
        .group_by(day)
    )
    with engine.connect() as connection:
        return {
            date.fromisoformat(row.day): float(row.cost or 0)
            for row in connection.execute(statement)
        }


def active_snooze(engine: Engine, instance_id: str, now: datetime) -> Snooze | None:
    """The snooze that keeps the machine longest, if one is still running at `now`."""
    statement = (
        select(gpu_snoozes)
        .where(gpu_snoozes.c.instance_id == instance_id, gpu_snoozes.c.until > now)
        .order_by(gpu_snoozes.c.until.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).first()
    if row is None:
        return None
    return Snooze(row.instance_id, row.until, row.reason, row.kept_by, row.kept_at)
