"""Query latency of typical spend questions, end to end, against a pandas group-by baseline.

Usage: python -m bench.queries [--rows 1000000] [--repeat 5] [--postgres URL|auto]
                                [--backends pandas,sqlite,duckdb,spark] [--reuse]

The store backends (SQLite, PostgreSQL) answer from ingested tables; duckdb and spark answer
from the same rows as one Parquet file, queried in place (storage.engines).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.data import write_files
from bench.ingest import REUSE_HELP, sqlite_ingest
from bench.postgres import postgres_databases
from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database
from storage.ingest import ingest_files

NOW = datetime(2026, 11, 29, 12)
LAST_MONTH = ("2026-10-01", "2026-11-01")
LAST_30 = ("2026-10-30", "2026-11-29")


def _team(tags: object) -> object:
    return json.loads(tags).get("team") if isinstance(tags, str) else None


def load_frame(csv: Path) -> pd.DataFrame:
    """The columns the pandas baseline needs from a FOCUS CSV, with `start` and `team` derived."""
    frame = pd.read_csv(
        csv,
        na_values=["NULL"],
        usecols=[
            "ChargePeriodStart",
            "EffectiveCost",
            "ProviderName",
            "ServiceName",
            "RegionId",
            "Tags",
        ],
    )
    frame["start"] = pd.to_datetime(frame["ChargePeriodStart"])
    frame["team"] = frame["Tags"].map(_team)
    return frame


def pandas_questions(frame: pd.DataFrame) -> dict[str, Callable[[], object]]:
    """The same questions answered with pandas on a frame already in memory."""

    def period(bounds: tuple[str, str]) -> pd.DataFrame:
        return frame[(frame["start"] >= bounds[0]) & (frame["start"] < bounds[1])]

    return {
        "what did we spend last month?": lambda: period(LAST_MONTH)["EffectiveCost"].sum(),
        "spend by provider last 30 days": lambda: (
            period(LAST_30).groupby("ProviderName")["EffectiveCost"].sum()
        ),
        "spend by team last month": lambda: (
            period(LAST_MONTH).groupby("team", dropna=False)["EffectiveCost"].sum()
        ),
        "daily spend last 30 days": lambda: (
            period(LAST_30).groupby(period(LAST_30)["start"].dt.date)["EffectiveCost"].sum()
        ),
        "top 5 services last month": lambda: (
            period(LAST_MONTH).groupby("ServiceName")["EffectiveCost"].sum().nlargest(5)
        ),
        "ec2 spend by region last month": lambda: (
            period(LAST_MONTH)
            .query("ServiceName == 'Amazon Elastic Compute Cloud'")
            .groupby("RegionId")["EffectiveCost"]
            .sum()
        ),
    }


def state_url(engine: str, folder: Path) -> str:
    """A fresh bot database for a cost `engine` that reads the files in place (rules, state)."""
    state = folder / f"state-{engine}.db"
    state.unlink(missing_ok=True)
    return f"sqlite:///{state}"


def timings(run: Callable[[], object], repeat: int) -> list[float]:
    """Seconds of `repeat` timed calls of `run`, after one untimed warm-up call."""
    run()  # warm caches (vocabulary, statement cache, page cache) before timing
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` 0.5 for the median) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    """Print a Markdown table of p50/p95 latencies per question and backend."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "spendbot-bench"
    )
    parser.add_argument(
        "--postgres", help="also measure PostgreSQL: an empty database's URL, or auto"
    )
    parser.add_argument(
        "--backends",
        default="pandas,sqlite",
        help="comma-separated: pandas, sqlite, duckdb, spark (PostgreSQL: --postgres)",
    )
    parser.add_argument("--reuse", action="store_true", help=REUSE_HELP)
    args = parser.parse_args()
    wanted = {name.strip().lower() for name in args.backends.split(",")}
    csv, parquet = write_files(args.rows, args.folder)
    frame = load_frame(csv)
    backends: list[tuple[str, Callable[[str], Callable[[], object]]]] = []
    if "pandas" in wanted:
        backends.append(("pandas (in memory)", lambda question: pandas_questions(frame)[question]))
    with postgres_databases(args.postgres) as new_postgres:
        urls = []
        if "sqlite" in wanted:
            url = sqlite_ingest("spendbot", csv, args.folder, reuse=args.reuse)[1]
            urls.append(("SQLite", url, "store", False))
        if new_postgres:
            urls.append(("PostgreSQL", new_postgres(), "store", True))
        for kind in ("duckdb", "spark"):
            if kind in wanted:
                urls.append((f"{kind} on Parquet", state_url(kind, args.folder), kind, False))
        for name, url, kind, ingest in urls:
            engine = open_database(url)
            if ingest:
                started = time.perf_counter()
                rows = ingest_files(engine, [csv]).rows
                seconds = time.perf_counter() - started
                print(
                    f"{name}: ingested {rows:,} rows in {seconds:,.0f} s ({rows / seconds:,.0f}/s)"
                )
            settings = Settings(
                database_url=url, now=NOW, cost_engine=kind, focus_path=str(parquet)
            )
            assistant = Assistant(settings, engine, load_skills())
            backends.append(
                (
                    f"{name} (spendbot ask)",
                    lambda question, a=assistant: lambda: a.ask(question, "bench"),
                )
            )
        print(
            f"{args.rows:,} line items, {args.repeat} timed runs per cell, milliseconds p50 / p95\n"
        )
        print("| question | " + " | ".join(name for name, _ in backends) + " |")
        print("|---|" + "---|" * len(backends))
        for question in pandas_questions(frame):
            cells = []
            for _, make in backends:
                times = timings(make(question), args.repeat)
                cells.append(
                    f"{statistics.median(times) * 1000:,.0f} / {percentile(times, 0.95) * 1000:,.0f}"
                )
            print(f"| {question} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
