"""``spendbot ingest-metric``: load business metrics (requests, inferences...) for unit costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.settings import Settings
from storage.database import open_database
from storage.unit_costs import parse_metric_csv, replace_metrics

console = Console()
errors = Console(stderr=True)


def ingest_metric(
    path: Annotated[Path, typer.Argument(help="CSV with a header date,name,value.")],
) -> None:
    """Load daily business metrics from CSV, replacing values already held for a (name, date).

    The file loads whole or not at all: a bad row stops it with the row and column named.
    Ask for unit costs in chat afterwards: "cost per 1K inferences last month".
    """
    settings = Settings()
    try:
        rows = parse_metric_csv(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        errors.print(f"error: {path}: {error}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    engine = open_database(settings.database_url)
    count = replace_metrics(engine, rows, settings.current_time())
    names = sorted({row.name for row in rows})
    days = f" from {min(r.day for r in rows)} to {max(r.day for r in rows)}" if rows else ""
    console.print(
        f"Loaded {count} value{'s' if count != 1 else ''} of {', '.join(names) or 'no metric'}"
        f"{days} from {path}.",
        highlight=False,
        markup=False,
    )
