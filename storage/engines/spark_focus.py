"""FOCUS Parquet queried in place with Spark SQL: temp views named like the store's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine

from storage.engines.focus_views import (
    Flavor,
    empty_sql,
    line_items_sql,
    tags_sql,
    tags_sql_expression,
)
from storage.engines.spark_dialect import Connection
from storage.models import allocation_rules, cost_splits, owners

ROW_ID = "__spendbot_row"
FLAVOR = Flavor(
    quote=lambda name: "`" + name.replace("`", "``") + "`",
    literal=lambda value: "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'",
    text_type="STRING",
    timestamp_type="TIMESTAMP_NTZ",
    text_to_timestamp="CAST(TRY_CAST({0} AS TIMESTAMP) AS TIMESTAMP_NTZ)",
)


def local_session(cores: int = 2, conf: Mapping[str, str] | None = None) -> Any:
    """A quiet local-mode SparkSession in UTC: no UI, few shuffle partitions, plus `conf`."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("spendbot")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def create_views(session: Any, path: str) -> None:
    """Register `cost_line_items`, `cost_tags` and friends over the Parquet files at `path`.

    Spark lists the files here: files added later are seen when the views are created again.
    """
    from pyspark.sql import functions

    # Tag JSON with a key twice keeps the last value, as Python's json module does.
    session.conf.set("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
    raw = (
        session.read.option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.parquet")
        .option("mergeSchema", "true")
        .parquet(path)
    )
    schema = [(field.name, field.dataType.simpleString()) for field in raw.schema.fields]
    row_id = functions.concat_ws(
        "#", functions.col("_metadata.file_path"), functions.col("_metadata.row_index")
    )
    raw.select("*", row_id.alias(ROW_ID)).createOrReplaceTempView("focus_files")
    quoted_id = FLAVOR.quote(ROW_ID)
    tags = tags_sql_expression(schema, FLAVOR)
    if tags is None:
        pairs = (
            "SELECT CAST(NULL AS STRING) AS line_item_id, 0 AS pos, "
            "CAST(NULL AS STRING) AS tag_key, CAST(NULL AS STRING) AS tag_value WHERE 1 = 0"
        )
    else:
        pairs = (
            f"SELECT {quoted_id} AS line_item_id, pos, tag_key, coalesce(tag_value, '') AS tag_value "
            f"FROM focus_files LATERAL VIEW posexplode(from_json({tags}, "
            "'map<string,string>')) tag AS pos, tag_key, tag_value"
        )
    files = len(raw.inputFiles())
    views = {
        "cost_line_items": line_items_sql("focus_files", quoted_id, schema, FLAVOR),
        "cost_tags": tags_sql(pairs),
        # The files were listed once, above: one fixed row tells the vocabulary so.
        "ingest_slices": f"SELECT CAST(NULL AS BIGINT) AS id, {files} AS row_count, "
        "CAST(NULL AS TIMESTAMP_NTZ) AS loaded_at",
        **{
            table.name: empty_sql(table, FLAVOR)
            for table in (allocation_rules, owners, cost_splits)
        },
    }
    for name, sql in views.items():
        session.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {sql}")


def open_spark_focus(path: str, session: Any | None = None) -> Engine:
    """An engine running the store's statements on Spark over the FOCUS Parquet at `path`.

    The views are the session's temporary views: one FOCUS path per session. Without
    `session`, a local-mode one is started (see `local_session`); pass a cluster's
    session to run the same queries there.
    """
    from pyspark.errors import AnalysisException

    session = session or local_session()
    try:
        create_views(session, path)
    except AnalysisException as error:
        raise ValueError(f"cannot read FOCUS Parquet at {path}: {error}") from None
    return create_engine("spark://", creator=lambda: Connection(session))
