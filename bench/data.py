"""Large FOCUS files for benchmarks: the demo data tiled across many billing accounts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from storage.demo import generate_demo_focus


def scaled_focus(rows: int, end: date = date(2026, 11, 28)) -> pd.DataFrame:
    """About `rows` FOCUS rows: copies of 120 days of demo data, each a distinct billing account."""
    base = generate_demo_focus(end, days=120)
    copies = max(1, -(-rows // len(base)))
    frames = []
    for copy in range(copies):
        frame = base.copy()
        frame["BillingAccountId"] = frame["BillingAccountId"].astype(str) + f"-{copy:05d}"
        frame["ResourceId"] = frame["ResourceId"].where(
            frame["ResourceId"].isna(), frame["ResourceId"] + f"-{copy}"
        )
        frame["Id"] = frame["Id"].astype(str) + f"-{copy}"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).head(rows)


def write_files(rows: int, folder: Path) -> tuple[Path, Path]:
    """Write `rows` rows as FOCUS CSV and Parquet into `folder` (reused when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / f"focus-{rows}.csv", folder / f"focus-{rows}.parquet"
    if not (csv.exists() and parquet.exists()):
        frame = scaled_focus(rows)
        frame.to_csv(csv, index=False, na_rep="NULL")
        frame.to_parquet(parquet, index=False)
    return csv, parquet
