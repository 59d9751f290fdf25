"""Cost engines: where spend questions run, the store or FOCUS files queried in place."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

CostEngineKind = Literal["store", "duckdb", "spark"]
COST_ENGINES: tuple[CostEngineKind, ...] = ("store", "duckdb", "spark")


def open_cost_engine(kind: CostEngineKind, focus_path: str | None) -> Engine | None:
    """The engine spend questions run on: None for the store, else one over `focus_path`."""
    if kind == "store":
        return None
    if not focus_path:
        raise ValueError(
            f"the {kind} cost engine needs SPENDBOT_FOCUS_PATH (a folder or s3:// URL)"
        )
    if kind == "duckdb":
        from storage.engines.duckdb_focus import open_duckdb_focus

        return open_duckdb_focus(focus_path)
    if kind == "spark":
        from storage.engines.spark_focus import open_spark_focus

        return open_spark_focus(focus_path)
    raise ValueError(f"unknown cost engine {kind!r}: one of {', '.join(COST_ENGINES)}")
