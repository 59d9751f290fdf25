"""Ingest throughput and peak memory: spendbot's ingest against pandas.read_csv + to_sql.

Each measurement runs in its own process so peak memory (max RSS) belongs to it alone.
Usage: python -m bench.ingest [--rows 1000000] [--postgres URL|auto] [--runs csv,parquet,baseline]
                              [--no-sqlite]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data import write_files
from bench.postgres import postgres_databases


def measure_child(kind: str, path: Path, url: str) -> dict:
    """Run one ingest in a child process; returns its rows, seconds and its own peak RSS."""
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "kind, path, url = sys.argv[1:4]\n"
        "start = time.perf_counter()\n"
        "if kind == 'pandas':\n"
        "    import pandas as pd\n"
        "    from sqlalchemy import create_engine\n"
        "    from storage.database import normalize_url\n"
        "    engine = create_engine(normalize_url(url))\n"
        "    rows = 0\n"
        "    for chunk in pd.read_csv(path, chunksize=50_000, na_values=['NULL']):\n"
        "        chunk.to_sql('baseline', engine, if_exists='append', index=False)\n"
        "        rows += len(chunk)\n"
        "else:\n"
        "    from storage.database import open_database\n"
        "    from storage.ingest import ingest_files\n"
        "    rows = ingest_files(open_database(url), [Path(path)]).rows\n"
        "seconds = time.perf_counter() - start\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's peak RSS across fork and exec into
        # ru_maxrss, so every child would report at least the parent's size.
        "import re\n"
        "status = Path('/proc/self/status').read_text()\n"
        "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024\n"
        "print(json.dumps({'rows': rows, 'seconds': seconds, 'peak_rss_mb': round(peak, 1)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, kind, str(path), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


REUSE_HELP = "take the SQLite ingest (store and figures) from an earlier run on the same rows"


def sqlite_ingest(kind: str, path: Path, folder: Path, *, reuse: bool = False) -> tuple[dict, str]:
    """Ingest `path` into its own SQLite file, measured; the figures and the store's URL.

    The figures are kept beside the store, so with `reuse` a later benchmark on the same rows
    (queries, growth) takes both from an earlier run instead of ingesting again.
    """
    name = f"ingest-{kind}-{path.suffix[1:]}-{path.stem.removeprefix('focus-')}"
    store, figures_file = folder / f"{name}.db", folder / f"{name}.json"
    url = f"sqlite:///{store}"
    if reuse and store.exists() and figures_file.exists():
        return json.loads(figures_file.read_text()), url
    figures_file.unlink(missing_ok=True)
    store.unlink(missing_ok=True)
    figures = measure_child(kind, path, url)
    figures_file.write_text(json.dumps(figures))
    return figures, url


def main() -> None:
    """Print a Markdown table of ingest figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "spendbot-bench"
    )
    parser.add_argument(
        "--postgres", help="also measure PostgreSQL: an empty database's URL, or auto"
    )
    parser.add_argument(
        "--runs",
        default="csv,parquet,baseline",
        help="comma-separated: csv, parquet (spendbot ingest), baseline (pandas)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    args = parser.parse_args()
    csv, parquet = write_files(args.rows, args.folder)
    runs = {
        "csv": ("spendbot", csv),
        "parquet": ("spendbot", parquet),
        "baseline": ("pandas", csv),
    }
    wanted = [runs[name.strip()] for name in args.runs.split(",")]
    with postgres_databases(args.postgres) as new_postgres:
        targets = []
        if not args.no_sqlite:
            targets.append(("SQLite", lambda kind, path: sqlite_ingest(kind, path, args.folder)[0]))
        if new_postgres:
            targets.append(
                ("PostgreSQL", lambda kind, path: measure_child(kind, path, new_postgres()))
            )
        print(
            "| store | method | file | rows | seconds | rows/s | peak RSS MB |\n|---|---|---|---|---|---|---|"
        )
        for store, measure in targets:
            for kind, path in wanted:
                figures = measure(kind, path)
                method = "spendbot ingest" if kind == "spendbot" else "pandas read_csv + to_sql"
                print(
                    f"| {store} | {method} | {path.suffix[1:]} | {figures['rows']:,} | {figures['seconds']:.1f} | "
                    f"{figures['rows'] / figures['seconds']:,.0f} | {figures['peak_rss_mb']:,} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
