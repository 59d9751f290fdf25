"""Spend queries over the FOCUS cost store: one SQL statement per question, shown on request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, Select, and_, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from storage.focus import COST_METRICS
from storage.models import cost_line_items as items
from storage.models import cost_tags

NONE_LABEL = "(none)"
OWNER = "owner"
"""The dimension resolved from allocation rules and owner tags at query time (storage.allocation)."""


class time_bucket(FunctionElement):
    """The day, ISO week (its Monday) or month of a timestamp, as ``YYYY-MM-DD`` / ``YYYY-MM``.

    The unit is a class attribute, one subclass per unit, so that it is part of SQLAlchemy's
    statement cache key: a bound parameter would not be, and a cached day bucket would be reused
    for a month.
    """

    type = String()
    inherit_cache = True
    unit = "day"


class day_bucket(time_bucket):
    """A timestamp's day."""

    inherit_cache = True
    unit = "day"


class week_bucket(time_bucket):
    """The Monday of a timestamp's ISO week."""

    inherit_cache = True
    unit = "week"


class month_bucket(time_bucket):
    """A timestamp's month."""

    inherit_cache = True
    unit = "month"


TIME_BUCKETS: dict[str, type[time_bucket]] = {
    "day": day_bucket,
    "week": week_bucket,
    "month": month_bucket,
}


@compiles(time_bucket, "sqlite")
def _time_bucket_sqlite(element: time_bucket, compiler: object, **kw: object) -> str:
    arg = compiler.process(element.clauses, **kw)  # type: ignore[attr-defined]
    if element.unit == "day":
        return f"strftime('%Y-%m-%d', {arg})"
    if element.unit == "week":
        return f"date({arg}, 'weekday 0', '-6 days')"
    return f"strftime('%Y-%m', {arg})"


@compiles(time_bucket)
def _time_bucket_default(element: time_bucket, compiler: object, **kw: object) -> str:
    arg = compiler.process(element.clauses, **kw)  # type: ignore[attr-defined]
    pattern = "YYYY-MM" if element.unit == "month" else "YYYY-MM-DD"
    return f"to_char(date_trunc('{element.unit}', {arg}), '{pattern}')"


@dataclass(frozen=True)
class Dimension:
    """Something spend can be grouped or filtered by."""

    name: str
    label: str
    expression: ColumnElement | None = None
    time_unit: str | None = None


DIMENSIONS: dict[str, Dimension] = {
    dimension.name: dimension
    for dimension in (
        Dimension("provider", "Provider", items.c.provider_name),
        Dimension("publisher", "Publisher", items.c.publisher_name),
        Dimension("invoice_issuer", "Invoice issuer", items.c.invoice_issuer_name),
        Dimension(
            "billing_account",
            "Billing account",
            func.coalesce(items.c.billing_account_name, items.c.billing_account_id),
        ),
        Dimension(
            "sub_account",
            "Sub account",
            func.coalesce(items.c.sub_account_name, items.c.sub_account_id),
        ),
        Dimension("service", "Service", items.c.service_name),
        Dimension("service_category", "Service category", items.c.service_category),
        Dimension("region", "Region", func.coalesce(items.c.region_id, items.c.region_name)),
        Dimension("resource", "Resource", items.c.resource_id),
        Dimension("resource_type", "Resource type", items.c.resource_type),
        Dimension("sku", "SKU", items.c.sku_id),
        Dimension("instance_type", "GPU instance type", items.c.gpu_instance_type),
        Dimension("charge_category", "Charge category", items.c.charge_category),
        Dimension("pricing_category", "Pricing category", items.c.pricing_category),
        Dimension("commitment", "Commitment discount", items.c.commitment_discount_id),
        Dimension("currency", "Currency", items.c.billing_currency),
        Dimension(OWNER, "Owner"),
        Dimension("day", "Day", time_unit="day"),
        Dimension("week", "Week (from Monday)", time_unit="week"),
        Dimension("month", "Month", time_unit="month"),
    )
}
TAG_PREFIX = "tag:"


def dimension_label(name: str) -> str:
    """A column heading for a dimension name or ``tag:<key>``."""
    if name.startswith(TAG_PREFIX):
        return f"Tag {name.removeprefix(TAG_PREFIX)}"
    return DIMENSIONS[name].label


@dataclass(frozen=True)
class Filter:
    """Keep (or with `exclude`, drop) rows whose dimension is one of `values`."""

    dimension: str
    values: tuple[str, ...]
    exclude: bool = False


class OwnerResolver(Protocol):
    """Builds the owner of a line item as one SQL expression (storage.allocation.Allocation)."""

    def expression(self, tag: Callable[[str], ColumnElement]) -> ColumnElement:
        """The owner; `tag(key)` gives the line item's value of tag `key` (NULL when absent)."""
        ...


@dataclass(frozen=True)
class SpendQuery:
    """A spend question in store terms: a half-open time range, a metric, groups and filters."""

    start: datetime
    end: datetime
    metric: str = "effective"
    currency: str | None = None
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = field(default_factory=tuple)
    gpu_only: bool = False
    owners: OwnerResolver | None = None

    @property
    def uses_owner(self) -> bool:
        """Whether the owner dimension is grouped or filtered on."""
        return OWNER in self.group_by or any(f.dimension == OWNER for f in self.filters)


@dataclass(frozen=True)
class SpendRow:
    """One group of a spend result; `key` lines up with the query's `group_by`."""

    key: tuple[str, ...]
    amount: float
    line_items: int


def spend_statement(query: SpendQuery) -> Select:
    """Build the single SELECT that answers `query`; tags join once per tag key used."""
    metric = items.c[COST_METRICS[query.metric]]
    conditions: list[ColumnElement[bool]] = [
        items.c.charge_period_start >= query.start,
        items.c.charge_period_start < query.end,
    ]
    if query.currency:
        conditions.append(items.c.billing_currency == query.currency)
    if query.gpu_only:
        conditions.append(items.c.is_gpu.is_(True))
    source = items
    tag_columns: dict[str, ColumnElement] = {}

    def expression_for(name: str) -> ColumnElement:
        nonlocal source
        if name.startswith(TAG_PREFIX):
            key = name.removeprefix(TAG_PREFIX)
            if key not in tag_columns:
                alias = cost_tags.alias(f"tag_{len(tag_columns)}")
                source = source.outerjoin(
                    alias, and_(alias.c.line_item_id == items.c.id, alias.c.key == key)
                )
                tag_columns[key] = alias.c.value
            return tag_columns[key]
        if name == OWNER:
            if query.owners is None:
                raise ValueError("the owner dimension needs SpendQuery.owners (see with_owners)")
            return query.owners.expression(lambda key: expression_for(TAG_PREFIX + key))
        dimension = DIMENSIONS[name]
        if dimension.time_unit:
            return TIME_BUCKETS[dimension.time_unit](items.c.charge_period_start)
        return dimension.expression

    for condition in query.filters:
        column = expression_for(condition.dimension)
        if condition.exclude:
            conditions.append(column.is_(None) | column.not_in(condition.values))
        else:
            conditions.append(column.in_(condition.values))
    groups = [
        func.coalesce(expression_for(name), NONE_LABEL).label(f"g{index}")
        for index, name in enumerate(query.group_by)
    ]
    statement = (
        select(
            *groups,
            func.coalesce(func.sum(metric), 0.0).label("amount"),
            func.count().label("line_items"),
        )
        .select_from(source)
        .where(*conditions)
    )
    if groups:
        statement = statement.group_by(*groups).order_by(func.sum(metric).desc(), *groups)
    return statement


def with_owners(engine: Engine, query: SpendQuery, costs: Engine | None = None) -> SpendQuery:
    """`query` with the current allocation rules when it uses the owner dimension.

    The rules are read from the store `engine`; `costs` is where the line items are when not in
    the store (storage.engines).
    """
    if query.owners is not None or not query.uses_owner:
        return query
    from storage.allocation import load_allocation  # allocation builds on this module

    return replace(query, owners=load_allocation(engine, costs))


def run_spend(engine: Engine, query: SpendQuery, costs: Engine | None = None) -> list[SpendRow]:
    """Run `query`; without groups the result is one row holding the total.

    `costs` is where the line items are when not in the store `engine` (storage.engines); the
    allocation rules always come from the store.
    """
    query = with_owners(engine, query, costs)
    with (costs or engine).connect() as connection:
        rows = connection.execute(spend_statement(query)).all()
    width = len(query.group_by)
    return [
        SpendRow(tuple(row[:width]), float(row.amount or 0.0), int(row.line_items)) for row in rows
    ]


def render_sql(engine: Engine, query: SpendQuery, costs: Engine | None = None) -> str:
    """The statement for `query` with its values inlined, runnable as plain SQL where it runs."""
    query = with_owners(engine, query, costs)
    statement = spend_statement(query)
    return str(statement.compile(costs or engine, compile_kwargs={"literal_binds": True}))


def distinct_values(engine: Engine, dimension: str) -> list[str]:
    """Every non-null value of a column dimension, for matching what users type."""
    expression = DIMENSIONS[dimension].expression
    if expression is None:
        return []
    with engine.connect() as connection:
        return [
            value
            for (value,) in connection.execute(
                select(expression).where(expression.is_not(None)).distinct()
            )
        ]


def tag_values(engine: Engine) -> dict[str, list[str]]:
    """Every tag key with its distinct values."""
    statement = select(cost_tags.c.key, cost_tags.c.value).distinct()
    found: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for key, value in connection.execute(statement):
            found.setdefault(key, []).append(value)
    return found


def currencies(engine: Engine) -> Sequence[tuple[str, int]]:
    """Billing currencies with their line-item counts, most used first."""
    statement = (
        select(items.c.billing_currency, func.count())
        .group_by(items.c.billing_currency)
        .order_by(func.count().desc())
    )
    with engine.connect() as connection:
        return [(currency, count) for currency, count in connection.execute(statement)]


def data_coverage(engine: Engine) -> tuple[datetime | None, datetime | None, int]:
    """First and last charge period start in the store, and its line-item count."""
    statement = select(
        func.min(items.c.charge_period_start), func.max(items.c.charge_period_start), func.count()
    )
    with engine.connect() as connection:
        first, last, count = connection.execute(statement).one()
    return first, last, int(count)
