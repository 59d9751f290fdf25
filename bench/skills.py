"""The heavy skills (digest, anomaly scan, forecast, showback) per cost engine, end to end.

On the SQLite store `bench.ingest` loaded (``--reuse``; loaded here otherwise) and on DuckDB
reading the same rows as one Parquet file in place, each skill runs through
`Assistant.execute` with no warm-up call (each reads most of the data once); the vocabulary of
known values, read once per ingest, is loaded before timing.
Usage: python -m bench.skills --rows 1000000 [--backends sqlite,duckdb] [--runs 2] [--reuse]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.data import write_files
from bench.ingest import REUSE_HELP, sqlite_ingest
from bench.queries import NOW, state_url
from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database

SKILL_CALLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("weekly digest", "digest_show", {"period": "last week"}),
    ("anomaly scan, last 30 days", "anomaly_list", {"period": "last 30 days"}),
    ("forecast this month", "forecast_show", {"period": "this month"}),
    ("showback last month", "owner_showback", {"period": "last month"}),
)

HEADINGS = {"sqlite": "SQLite store", "duckdb": "DuckDB on Parquet", "spark": "Spark on Parquet"}


def assistant_for(backend: str, rows: int, folder: Path, reuse: bool) -> Assistant:
    """An Assistant answering from the SQLite store or from the Parquet file with DuckDB."""
    csv, parquet = write_files(rows, folder)
    if backend == "sqlite":
        url = sqlite_ingest("spendbot", csv, folder, reuse=reuse)[1]
        settings = Settings(database_url=url, now=NOW)
    else:
        url = state_url(backend, folder)
        settings = Settings(database_url=url, now=NOW, cost_engine=backend, focus_path=str(parquet))
    assistant = Assistant(settings, open_database(url), load_skills())
    # The store's vocabulary is read once per ingest, by whichever question comes first: not
    # part of any one skill's time.
    assistant.vocabulary.choose_currency(None)
    return assistant


def seconds(assistant: Assistant, skill_name: str, args: dict[str, Any], runs: int) -> float:
    """Median wall seconds of `runs` calls; a reply that is an error stops the benchmark."""
    skill = assistant.registry.get(skill_name)
    assert skill is not None, skill_name
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        reply = assistant.execute(skill, args, "bench")
        times.append(time.perf_counter() - started)
        if reply.is_error:
            raise SystemExit(f"{skill_name} failed: {reply.text}")
    return statistics.median(times)


def main() -> None:
    """Print a Markdown table: one row per skill, one column per backend, in seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,duckdb", help="comma-separated")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "spendbot-bench"
    )
    parser.add_argument("--reuse", action="store_true", help=REUSE_HELP)
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",")]
    assistants = {
        name: assistant_for(name, args.rows, args.folder, args.reuse) for name in backends
    }
    print(f"{args.rows:,} line items, median of {args.runs} run(s), seconds\n")
    print("| skill | " + " | ".join(HEADINGS.get(name, name) for name in backends) + " |")
    print("|---|" + "---|" * len(backends))
    for label, skill_name, skill_args in SKILL_CALLS:
        cells = [
            f"{seconds(assistant, skill_name, skill_args, args.runs):,.1f}"
            for assistant in assistants.values()
        ]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
