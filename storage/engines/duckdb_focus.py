"""FOCUS Parquet queried in place with DuckDB: a folder or s3:// URL seen as the store's tables."""

from __future__ import annotations

from typing import Any

import duckdb
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.compiler import compiles

from storage.costs import time_bucket
from storage.engines.focus_views import (
    Flavor,
    empty_sql,
    line_items_sql,
    tags_sql,
    tags_sql_expression,
)
from storage.models import allocation_rules, cost_splits, owners


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


FLAVOR = Flavor(
    quote=lambda name: '"' + name.replace('"', '""') + '"',
    literal=_literal,
    text_type="VARCHAR",
    timestamp_type="TIMESTAMP",
    # Parsing with a time zone is several times slower: only for text that has an offset.
    text_to_timestamp="CASE WHEN contains(substr({0}, 11), '+') OR contains(substr({0}, 11), '-') "
    "THEN CAST(TRY_CAST({0} AS TIMESTAMPTZ) AS TIMESTAMP) ELSE TRY_CAST({0} AS TIMESTAMP) END",
)
# A row's id: its file's place in the sorted file list, and its row number in that file.
ROW_ID = "(CAST(file_index AS BIGINT) * 1099511627776 + file_row_number)"


@compiles(time_bucket, "duckdb")
def _time_bucket_duckdb(element: time_bucket, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    pattern = "%Y-%m" if element.unit == "month" else "%Y-%m-%d"
    return f"strftime(date_trunc('{element.unit}', {arg}), '{pattern}')"


def parquet_glob(path: str) -> str:
    """The Parquet files under `path`: a folder (searched recursively), a file or a glob."""
    if path.lower().endswith(".parquet") or any(char in path for char in "*?["):
        return path
    return path.rstrip("/") + "/**/*.parquet"


def _setup(path: str) -> list[str]:
    """Session settings: UTC for timestamps and, for S3, credentials from the AWS chain."""
    statements = ["SET TimeZone = 'UTC'"]
    if path.startswith("s3://"):
        statements.append(
            "CREATE SECRET IF NOT EXISTS spendbot_s3 (TYPE s3, PROVIDER credential_chain)"
        )
    return statements


def focus_views(path: str, connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The statements that create the store's tables as views over the FOCUS files at `path`."""
    files = parquet_glob(path)
    source = f"read_parquet({_literal(files)}, union_by_name = true)"
    schema = connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    columns = [(name, str(sql_type)) for name, sql_type, *_ in schema]
    raw = tags_sql_expression(columns, FLAVOR)
    if raw is None:
        pairs = (
            "SELECT CAST(NULL AS BIGINT) AS line_item_id, 0 AS pos, "
            "CAST(NULL AS VARCHAR) AS tag_key, CAST(NULL AS VARCHAR) AS tag_value WHERE 1 = 0"
        )
    else:
        pairs = (
            f"SELECT {ROW_ID} AS line_item_id, j.id AS pos, j.key AS tag_key, "
            "CASE j.type WHEN 'VARCHAR' THEN j.value ->> '$' WHEN 'NULL' THEN '' "
            "ELSE CAST(j.value AS VARCHAR) END AS tag_value "
            f"FROM {source} AS focus, json_each(CASE WHEN json_valid({raw}) "
            f"THEN CASE WHEN json_type({raw}) = 'OBJECT' THEN {raw} END END) AS j"
        )
    blobs = f"read_blob({_literal(files)})"
    return [
        f"CREATE VIEW cost_line_items AS {line_items_sql(source, ROW_ID, columns, FLAVOR)}",
        f"CREATE VIEW cost_tags AS {tags_sql(pairs)}",
        # One "slice" per file: its size and modification time change when it is rewritten,
        # which is what tells the vocabulary to reload.
        "CREATE VIEW ingest_slices AS SELECT CAST(NULL AS BIGINT) AS id, "
        "CAST(NULL AS VARCHAR) AS provider_name, CAST(NULL AS VARCHAR) AS billing_account_id, "
        "CAST(NULL AS TIMESTAMP) AS billing_period_start, filename AS source, "
        "size AS row_count, CAST(last_modified AS TIMESTAMP) AS loaded_at "
        f"FROM {blobs}",
        *(
            f"CREATE VIEW {table.name} AS {empty_sql(table, FLAVOR)}"
            for table in (allocation_rules, owners, cost_splits)
        ),
    ]


def open_duckdb_focus(path: str) -> Engine:
    """An in-memory DuckDB engine whose every connection sees the FOCUS files at `path`.

    The files' columns are read once here; each file is read again by every query, so
    files added or rewritten later are seen at once (a new column needs a restart).
    """
    probe = duckdb.connect()
    try:
        for statement in _setup(path):
            probe.execute(statement)
        statements = _setup(path) + focus_views(path, probe)
    except duckdb.IOException as error:
        raise ValueError(f"cannot read FOCUS Parquet at {path}: {error}") from None
    finally:
        probe.close()
    engine = create_engine("duckdb:///:memory:")

    @event.listens_for(engine, "connect")
    def _create_views(dbapi_connection: Any, _record: Any) -> None:
        for statement in statements:
            dbapi_connection.execute(statement)

    return engine
