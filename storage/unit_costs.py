"""Unit costs in the store: cost and consumed quantity per group, and loaded business metrics."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, Select, case, delete, func, insert, select

from storage.costs import SpendQuery, spend_statement, with_owners
from storage.models import cost_line_items as items
from storage.models import unit_metrics

TOKEN_UNITS: dict[str, float] = {
    "tokens": 1.0,
    "token": 1.0,
    "1k tokens": 1e3,
    "1m tokens": 1e6,
    "thousand tokens": 1e3,
    "million tokens": 1e6,
}
"""ConsumedUnit spellings of model tokens (lower-cased), with the tokens each unit holds."""

HOUR_UNITS: dict[str, float] = {
    "hours": 1.0,
    "hour": 1.0,
    "hrs": 1.0,
    "hr": 1.0,
    "h": 1.0,
    "instance hours": 1.0,
    "node hours": 1.0,
}
"""ConsumedUnit spellings of instance hours (lower-cased)."""


@dataclass(frozen=True)
class UnitRow:
    """One group: its EffectiveCost (or other metric) and consumed quantity in base units."""

    key: tuple[str, ...]
    cost: float
    quantity: float
    line_items: int


def unit_statement(query: SpendQuery, units: dict[str, float], *, gpu: bool = False) -> Select:
    """The spend statement of `query` over Usage rows measured in `units`, plus their quantity.

    Quantities are converted to the base unit (a row in ``1K tokens`` counts 1,000 per unit);
    rows without a ConsumedQuantity are left out of cost and quantity alike. With `gpu`, only
    rows whose GPU instance type is known.
    """
    unit = func.lower(func.trim(items.c.consumed_unit))
    factor = case(*((unit == name, scale) for name, scale in units.items()), else_=0.0)
    conditions = [
        items.c.charge_category == "Usage",
        unit.in_(list(units)),
        items.c.consumed_quantity.is_not(None),
    ]
    if gpu:
        conditions.append(items.c.gpu_instance_type.is_not(None))
    return (
        spend_statement(query)
        .add_columns(
            func.coalesce(func.sum(items.c.consumed_quantity * factor), 0.0).label("quantity")
        )
        .where(*conditions)
    )


def run_units(
    engine: Engine,
    query: SpendQuery,
    units: dict[str, float],
    *,
    gpu: bool = False,
    costs: Engine | None = None,
) -> tuple[list[UnitRow], str]:
    """Cost and quantity per group of `query`, and the SQL that computed them (values inlined).

    `costs` is where the line items are when not in the store `engine` (storage.engines).
    """
    query = with_owners(engine, query, costs)
    statement = unit_statement(query, units, gpu=gpu)
    runs_on = costs or engine
    with runs_on.connect() as connection:
        rows = connection.execute(statement).all()
    width = len(query.group_by)
    found = [
        UnitRow(
            tuple(row[:width]), float(row.amount or 0.0), float(row.quantity), int(row.line_items)
        )
        for row in rows
        if row.line_items
    ]
    sql = str(statement.compile(runs_on, compile_kwargs={"literal_binds": True}))
    return found, sql


# Business metrics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One day's value of a business metric, e.g. (2026-11-02, inferences, 125000)."""

    day: date
    name: str
    value: float


def parse_metric_csv(text: str) -> list[MetricRow]:
    """Metric values from CSV with a header ``date,name,value`` (ISO dates, plain numbers).

    Raises ValueError naming the row (its line in the file) and column of the first bad cell,
    or the two rows that give the same (name, date).
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [(field or "").strip().lower() for field in reader.fieldnames or ()]
    missing = [column for column in ("date", "name", "value") if column not in header]
    if missing:
        raise ValueError(f"CSV header lacks column {', '.join(missing)}")
    reader.fieldnames = header
    found: list[MetricRow] = []
    seen: dict[tuple[str, date], int] = {}
    for line, record in enumerate(reader, start=2):
        raw_day = (record.get("date") or "").strip()
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            raise ValueError(
                f"row {line}, column date: {raw_day!r} is not a date (YYYY-MM-DD)"
            ) from None
        name = (record.get("name") or "").strip()
        if not name:
            raise ValueError(f"row {line}, column name: empty")
        raw_value = (record.get("value") or "").strip()
        try:
            value = float(raw_value.replace(",", ""))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"row {line}, column value: {raw_value!r} is not a non-negative number"
            )
        if (name.lower(), day) in seen:
            raise ValueError(
                f"row {line}: {name} on {day} is already given on row {seen[name.lower(), day]}"
            )
        seen[name.lower(), day] = line
        found.append(MetricRow(day, name, value))
    return found


def replace_metrics(engine: Engine, rows: list[MetricRow], at: datetime) -> int:
    """Store `rows` in one transaction, replacing values already held for the same (name, date)."""
    if not rows:
        return 0
    days_by_name: dict[str, list[date]] = {}
    for row in rows:
        days_by_name.setdefault(row.name, []).append(row.day)
    with engine.begin() as connection:
        for name, days in days_by_name.items():
            for first in range(0, len(days), 500):
                connection.execute(
                    delete(unit_metrics).where(
                        unit_metrics.c.name == name,
                        unit_metrics.c.date.in_(days[first : first + 500]),
                    )
                )
        connection.execute(
            insert(unit_metrics),
            [
                {"date": row.day, "name": row.name, "value": row.value, "loaded_at": at}
                for row in rows
            ],
        )
    return len(rows)


def metric_names(engine: Engine) -> list[str]:
    """The names of loaded metrics, alphabetically."""
    with engine.connect() as connection:
        return list(
            connection.scalars(select(unit_metrics.c.name).distinct().order_by(unit_metrics.c.name))
        )


@dataclass(frozen=True)
class MetricTotal:
    """A metric summed over a range of days, with how many of those days had a value."""

    name: str
    total: float
    days_with_values: int
    sql: str


def metric_total(engine: Engine, name: str, start: date, end: date) -> MetricTotal:
    """The sum of metric `name` from `start` to `end` inclusive."""
    statement = select(
        func.coalesce(func.sum(unit_metrics.c.value), 0.0), func.count(unit_metrics.c.id)
    ).where(
        unit_metrics.c.name == name,
        unit_metrics.c.date >= start,
        unit_metrics.c.date <= end,
    )
    with engine.connect() as connection:
        total, days = connection.execute(statement).one()
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    return MetricTotal(name, float(total), int(days), sql)
