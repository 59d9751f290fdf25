"""Database tables: FOCUS line items, their tags and the ingested slices they came from."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

from storage.focus import COLUMNS, ColumnKind

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for ORM models; its metadata holds every table, Core ones too."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def column_type(kind: ColumnKind) -> TypeEngine:
    """The SQL type that stores a FOCUS column of `kind`."""
    if kind == "money":
        # Exact decimals in PostgreSQL; read back as float, exact to the cent at any
        # realistic total.
        return Numeric(24, 10, asdecimal=False)
    if kind == "number":
        return Numeric(30, 10, asdecimal=False)
    if kind == "datetime":
        return DateTime()
    return Text()


ingest_slices = Table(
    "ingest_slices",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_name", String(200), nullable=False),
    Column("billing_account_id", String(200), nullable=False),
    Column("billing_period_start", DateTime(), nullable=False),
    Column("source", Text(), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("loaded_at", DateTime(), nullable=False),
    UniqueConstraint("provider_name", "billing_account_id", "billing_period_start"),
)
"""A (provider, billing account, billing period) slice: the unit a restated export replaces."""

cost_line_items = Table(
    "cost_line_items",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "slice_id",
        Integer,
        ForeignKey("ingest_slices.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    *(
        Column(column.name, column_type(column.kind), nullable=not column.required)
        for column in COLUMNS
    ),
    # Derived at ingest from the SKU, description and resource fields (storage.focus).
    Column("gpu_instance_type", Text()),
    Column("is_gpu", Boolean, nullable=False, default=False),
    Index("ix_cost_line_items_charge_period_start", "charge_period_start"),
)
"""One FOCUS cost and usage row, with the columns in `storage.focus.COLUMNS`."""

cost_tags = Table(
    "cost_tags",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "line_item_id",
        Integer,
        ForeignKey("cost_line_items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "slice_id",
        Integer,
        ForeignKey("ingest_slices.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key", String(200), nullable=False),
    Column("value", Text(), nullable=False),
    UniqueConstraint("line_item_id", "key"),
    Index("ix_cost_tags_key_value", "key", "value"),
)
"""One tag of a line item; keys are lower-cased so `Team` and `team` are one key."""
