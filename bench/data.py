"""Large FOCUS files for benchmarks: the demo data tiled across many billing accounts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from storage.demo import generate_demo_focus


def scaled_chunks(rows: int, end: date = date(2026, 11, 28)) -> Iterator[pd.DataFrame]:
    """About `rows` FOCUS rows in chunks: copies of 120 days of demo data, each its own account.

    Chunks keep memory flat, so 10M-row files can be written on a small machine.
    """
    base = generate_demo_focus(end, days=120)
    left = rows
    for copy in range(-(-rows // len(base))):
        frame = base.head(left).copy()
        frame["BillingAccountId"] = frame["BillingAccountId"].astype(str) + f"-{copy:05d}"
        frame["ResourceId"] = frame["ResourceId"].where(
            frame["ResourceId"].isna(), frame["ResourceId"] + f"-{copy}"
        )
        frame["Id"] = frame["Id"].astype(str) + f"-{copy}"
        left -= len(frame)
        yield frame


def write_files(rows: int, folder: Path) -> tuple[Path, Path]:
    """Write `rows` rows as FOCUS CSV and Parquet into `folder` (reused when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / f"focus-{rows}.csv", folder / f"focus-{rows}.parquet"
    if csv.exists() and parquet.exists():
        return csv, parquet
    partial_csv, partial_parquet = csv.with_suffix(".csv.part"), parquet.with_suffix(".part")
    writer: pq.ParquetWriter | None = None
    try:
        for index, frame in enumerate(scaled_chunks(rows)):
            frame.to_csv(
                partial_csv,
                mode="a" if index else "w",
                header=not index,
                index=False,
                na_rep="NULL",
            )
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(partial_parquet, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    partial_csv.rename(csv)
    partial_parquet.rename(parquet)
    return csv, parquet
