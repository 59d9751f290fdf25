"""Raw FOCUS columns as the store's tables: the SQL of views that any engine can hold.

The views give `cost_line_items` and `cost_tags` the store's names and meanings: FOCUS column
names matched as ingest matches them (any casing, 1.2+ renames), text trimmed and null tokens
made NULL, money as DOUBLE, times as naive UTC, the GPU instance type found by the same pattern,
and tag keys lower-cased with the first of any clashing keys kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, DateTime, Integer, Numeric, Table

from storage.focus import COLUMNS, GPU_INSTANCE_PATTERN, REQUIRED, FocusColumn

GPU_SEARCHED = ("charge_description", "sku_id", "sku_price_id", "resource_type", "resource_name")
"""Columns searched for a GPU instance type, as at ingest (plus every ``x_`` column)."""


@dataclass(frozen=True)
class Flavor:
    """How one SQL engine spells identifiers, string literals and the types the views use."""

    quote: Callable[[str], str]
    literal: Callable[[str], str]
    text_type: str
    timestamp_type: str
    text_to_timestamp: str
    """A template turning text ``{0}`` into a naive UTC timestamp, NULL when it does not parse."""


def _is_text(sql_type: str) -> bool:
    return sql_type.upper() in ("VARCHAR", "STRING", "JSON")


def _null_type(kind: str, flavor: Flavor) -> str:
    if kind in ("money", "number"):
        return "DOUBLE"
    return flavor.timestamp_type if kind == "datetime" else flavor.text_type


def _value(name: str, sql_type: str, column: FocusColumn, flavor: Flavor) -> str:
    quoted = flavor.quote(name)
    text = _is_text(sql_type)
    if column.kind in ("money", "number"):
        return f"TRY_CAST(trim({quoted}) AS DOUBLE)" if text else f"CAST({quoted} AS DOUBLE)"
    if column.kind == "datetime":
        if text:
            return flavor.text_to_timestamp.format(quoted)
        return f"CAST({quoted} AS {flavor.timestamp_type})"
    if not text:
        return f"CAST({quoted} AS {flavor.text_type})"
    return f"CASE WHEN trim({quoted}) IN ('', 'NULL', 'null') THEN NULL ELSE trim({quoted}) END"


def _squash(name: str) -> str:
    return name.replace("_", "").lower()


def focus_columns(schema: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The files' column names for each FOCUS column (storage name), as ingest matches them.

    Files of several FOCUS versions can sit side by side, so a column can have several names
    (``ProviderName`` and ``ServiceProviderName``); the first non-null value is taken.
    """
    wanted = {
        _squash(alias): column
        for column in COLUMNS
        for alias in (column.focus_name, *column.aliases)
    }
    found: dict[str, list[str]] = {}
    for name, _ in schema:
        column = wanted.get(_squash(name))
        if column:
            found.setdefault(column.name, []).append(name)
    missing = [column.focus_name for column in REQUIRED if column.name not in found]
    if missing:
        raise ValueError(
            f"the FOCUS files lack required column(s): {', '.join(missing)} "
            "(names are matched case-insensitively, FOCUS 1.0 to 1.2)"
        )
    return found


def tags_sql_expression(schema: Sequence[tuple[str, str]], flavor: Flavor) -> str | None:
    """The files' Tags JSON text as one expression, or None when no file has Tags."""
    names = focus_columns(schema).get("tags")
    if not names:
        return None
    texts = [f"CAST({flavor.quote(name)} AS {flavor.text_type})" for name in names]
    return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"


def line_items_sql(
    source: str, id_sql: str, schema: Sequence[tuple[str, str]], flavor: Flavor
) -> str:
    """A SELECT giving `source`'s rows as `cost_line_items`, with `id_sql` as each row's id.

    `schema` is the files' (column name, SQL type) list; without a required FOCUS column it
    raises ValueError.
    """
    types = dict(schema)
    by_column = focus_columns(schema)

    def expression(column: FocusColumn) -> str:
        names = by_column.get(column.name)
        if not names:
            return f"CAST(NULL AS {_null_type(column.kind, flavor)})"
        values = [_value(name, types[name], column, flavor) for name in names]
        return values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"

    values = [expression(column) for column in COLUMNS]
    gpu_names = {name for column in GPU_SEARCHED for name in by_column.get(column, [])}
    searched = [name for name, _ in schema if name in gpu_names or name.lower().startswith("x_")]
    pattern = flavor.literal(f"(?i){GPU_INSTANCE_PATTERN.pattern}")
    found = [
        f"NULLIF(regexp_extract(CAST({flavor.quote(name)} AS {flavor.text_type}), {pattern}, 0), '')"
        for name in searched
    ]
    gpu = f"coalesce({', '.join(found)})" if found else f"CAST(NULL AS {flavor.text_type})"
    selected = ", ".join(
        [f"{id_sql} AS id", "CAST(NULL AS BIGINT) AS slice_id"]
        + [f"{value} AS {column.name}" for value, column in zip(values, COLUMNS, strict=True)]
        + [f"{gpu} AS gpu_instance_type"]
    )
    return (
        "SELECT *, gpu_instance_type IS NOT NULL AS is_gpu "
        f"FROM (SELECT {selected} FROM {source}) AS focus"
    )


def tags_sql(pairs_sql: str) -> str:
    """`cost_tags` from rows (line_item_id, pos, tag_key, tag_value) in each item's JSON order."""
    return (
        "SELECT line_item_id, key, min_by(value, pos) AS value FROM ("
        "SELECT line_item_id, pos, substr(lower(trim(tag_key)), 1, 200) AS key, tag_value AS value"
        f" FROM ({pairs_sql}) AS pairs) AS tags WHERE key <> '' GROUP BY line_item_id, key"
    )


def empty_sql(table: Table, flavor: Flavor) -> str:
    """A SELECT with `table`'s columns and no rows, for tables the files do not hold."""

    def sql_type(column_type: object) -> str:
        if isinstance(column_type, Boolean):
            return "BOOLEAN"
        if isinstance(column_type, Integer):
            return "BIGINT"
        if isinstance(column_type, Numeric):
            return "DOUBLE"
        return flavor.timestamp_type if isinstance(column_type, DateTime) else flavor.text_type

    columns = ", ".join(
        f"CAST(NULL AS {sql_type(column.type)}) AS {flavor.quote(column.name)}"
        for column in table.columns
    )
    return f"SELECT {columns} WHERE 1 = 0"
