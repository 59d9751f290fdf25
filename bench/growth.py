"""How ingest, queries, the digest and the anomaly scan grow with data size, on SQLite.

For each size given, the same tiled demo data (`bench.data`) is ingested by spendbot and by the
pandas read_csv + to_sql baseline (each in its own process), then typical questions, the weekly
digest and the anomaly scan run end to end through `Assistant.execute` / `Assistant.ask` on the
store spendbot just loaded, next to pandas group-bys on the same rows in memory.
Usage: python -m bench.growth --rows 100000 1000000 [--repeat 5] [--reuse]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import write_files
from bench.ingest import REUSE_HELP, sqlite_ingest
from bench.queries import NOW, load_frame, pandas_questions, timings
from bot.pipeline import Assistant
from bot.render_slack import reply_blocks
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database

Figures = dict[str, float]
# Questions timed at every size (a subset of bench.queries, to keep the run short).
QUESTIONS = (
    "what did we spend last month?",
    "spend by team last month",
    "top 5 services last month",
)


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    return statistics.median(timings(run, repeat)) * 1000


def _slow_ms(run: Callable[[], Any], runs: int = 2) -> tuple[float, Any]:
    """Median milliseconds of `runs` calls, with no warm-up call, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(rows: int, folder: Path, repeat: int, reuse: bool = False) -> Figures:
    """Every figure at one size: ingest rows/s and peak RSS, latencies in milliseconds."""
    csv, _ = write_files(rows, folder)
    figures: Figures = {}
    urls = {}
    for kind in ("spendbot", "pandas"):
        result, urls[kind] = sqlite_ingest(kind, csv, folder, reuse=reuse)
        figures[f"ingest rows/s ({kind})"] = result["rows"] / result["seconds"]
        figures[f"ingest peak RSS MB ({kind})"] = result["peak_rss_mb"]
    url = urls["spendbot"]
    engine = open_database(url)
    assistant = Assistant(Settings(database_url=url, now=NOW), engine, load_skills())
    in_memory = pandas_questions(load_frame(csv))
    for question in QUESTIONS:
        figures[f"{question} ms (spendbot)"] = _median_ms(
            lambda q=question: assistant.ask(q, "bench"), repeat
        )
        figures[f"{question} ms (pandas)"] = _median_ms(in_memory[question], repeat)
    digest, scan = assistant.registry.get("digest_show"), assistant.registry.get("anomaly_list")
    assert digest is not None and scan is not None
    # The slow skills get no warm-up call: the questions above warmed the caches.
    digest_ms, reply = _slow_ms(lambda: assistant.execute(digest, {"period": "last week"}, "bench"))
    assert not reply.is_error, reply.text
    figures["digest (queries, anomalies, chart) ms"] = digest_ms
    figures["digest Slack blocks ms"] = _median_ms(lambda: reply_blocks(reply), repeat)
    figures["anomaly scan, last 30 days ms"] = _slow_ms(
        lambda: assistant.execute(scan, {"period": "last 30 days"}, "bench")
    )[0]
    engine.dispose()
    return figures


def table(results: dict[int, Figures]) -> str:
    """A Markdown table: one column per size, then each size's ratio to the first."""
    sizes = sorted(results)
    head = ["figure", *(f"{size:,} rows" for size in sizes)]
    head += [f"x{size // sizes[0]} / x1" for size in sizes[1:]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name in results[sizes[0]]:
        values = [results[size][name] for size in sizes]
        cells = [f"{value:,.0f}" if value >= 10 else f"{value:.1f}" for value in values]
        cells += [f"{value / values[0]:.2f}" for value in values[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the growth table for the sizes given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "spendbot-bench"
    )
    parser.add_argument("--reuse", action="store_true", help=REUSE_HELP)
    args = parser.parse_args()
    results = {}
    for rows in sorted(args.rows):
        results[rows] = measure(rows, args.folder, args.repeat, args.reuse)
        print(f"{rows:,} rows measured", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
