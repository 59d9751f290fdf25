"""Fast bulk inserts for ingestion: COPY on PostgreSQL, one executemany on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, DateTime, Table


def bulk_insert(connection: Connection, table: Table, columns: dict[str, Sequence]) -> None:
    """Insert rows given column-wise (`columns` maps column name to equal-length values).

    Values pass through each column type's own bind processing, so what is stored is what an
    ordinary SQLAlchemy insert would store; only the per-row statement overhead is skipped.
    """
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    dialect = connection.dialect
    processed = []
    for name in names:
        column_type = table.c[name].type
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        values = columns[name]
        if processor is None:
            processed.append(values)
        elif isinstance(column_type, DateTime):
            processed.append(_each_distinct_once(values, processor))
        else:
            processed.append([None if value is None else processor(value) for value in values])
    rows = list(zip(*processed, strict=True))
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in names)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})", rows)


def _each_distinct_once(values: Sequence, processor: Callable[[Any], Any]) -> list:
    """Bind-process `values`, each distinct one once: billing data repeats few timestamps.

    Formatting a date-time (SQLite stores text) costs far more than looking it up.
    """
    done: dict[Any, Any] = {None: None}
    result = []
    for value in values:
        if value not in done:
            done[value] = processor(value)
        result.append(done[value])
    return result
