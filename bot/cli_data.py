"""``spendbot ingest``, ``demo-data`` and ``sync``: commands that load cost data into the store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from bot.settings import Settings
from skills.errors import UserError
from skills.money import format_money
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.demo_gpus import load_demo_gpu_samples
from storage.ingest import IngestReport, ingest_files, ingest_frame

console = Console()
errors = Console(stderr=True)


def _print_report(report: IngestReport) -> None:
    totals = ", ".join(
        f"EffectiveCost {format_money(report.effective_cost[currency], currency)} / BilledCost "
        f"{format_money(report.billed_cost[currency], currency)}"
        for currency in sorted(report.effective_cost)
    )
    console.print(f"Loaded {report.rows:,} rows from {len(report.files)} file(s).")
    console.print(f"Providers: {', '.join(sorted(report.providers)) or 'none'}")
    console.print(f"Billing periods: {', '.join(sorted(report.billing_periods)) or 'none'}")
    console.print(f"Totals: {totals or 'none'}")
    if report.replaced_slices:
        console.print(
            f"Replaced {report.replaced_slices} previously loaded slice(s) (provider, account, billing period)."
        )


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="FOCUS 1.0+ files: .csv, .csv.gz or .parquet")
    ],
) -> None:
    """Load FOCUS billing files; a restated export replaces its billing period."""
    settings = Settings()
    engine = open_database(settings.database_url)
    total = sum(path.stat().st_size for path in paths if path.is_file())
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=errors,
            transient=True,
        ) as bar:
            task = bar.add_task("Ingesting", total=total)
            report = ingest_files(engine, paths, progress=lambda done: bar.advance(task, done))
    except UserError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False)
        errors.print("Nothing was loaded; the store is unchanged.")
        raise typer.Exit(1) from None
    _print_report(report)


def demo_data(
    days: Annotated[int, typer.Option(help="Days of history, ending yesterday.")] = 120,
    csv: Annotated[
        Path | None, typer.Option(help="Also write the generated FOCUS rows to this CSV file.")
    ] = None,
) -> None:
    """Generate realistic AI-infrastructure spend in FOCUS form and load it, with GPU telemetry."""
    settings = Settings()
    frame = generate_demo_focus(settings.current_time().date() - timedelta(days=1), days=days)
    if csv:
        frame.to_csv(csv, index=False, na_rep="NULL")
        console.print(f"Wrote {len(frame):,} rows to {csv}")
    engine = open_database(settings.database_url)
    _print_report(ingest_frame(engine, frame, "demo data"))
    samples = load_demo_gpu_samples(engine, settings.current_time())
    console.print(
        f"GPU telemetry: {samples:,} samples from two on-premises hosts (the last 3 hours)"
    )


def sync(
    source: Annotated[
        str | None,
        typer.Argument(
            help="openai, anthropic, aws-exports, aws-cost-explorer, gcp-exports, azure-exports"
            " or onprem-gpus (default: every configured one)."
        ),
    ] = None,
    months: Annotated[
        int | None,
        typer.Option(
            help="Whole months to replace, ending with this one (default SPENDBOT_SYNC_MONTHS)."
        ),
    ] = None,
) -> None:
    """Pull spend from the configured sources now; each synced month replaces what was stored."""
    from storage.connectors import SOURCES, configured_sources, sync_source

    settings = Settings()
    configs = configured_sources(settings)
    if source is not None and source not in SOURCES:
        errors.print(f"error: unknown source {source!r}; choose one of {', '.join(SOURCES)}")
        raise typer.Exit(2)
    if source is not None and source not in configs:
        errors.print(f"error: {source} is not configured (see the README's Connectors section)")
        raise typer.Exit(2)
    names = [source] if source else list(configs)
    if not names:
        errors.print("No sources are configured (see the README's Connectors section).")
        raise typer.Exit(2)
    engine = open_database(settings.database_url)
    failed = False
    for name in names:
        try:
            result = sync_source(
                engine,
                name,
                configs[name],
                now=settings.current_time(),
                months=months or settings.sync_months,
            )
        except UserError as error:
            errors.print(f"{name}: error: {error}", highlight=False, markup=False)
            errors.print(f"{name}: nothing was loaded; the store is unchanged.")
            failed = True
            continue
        report = result.report
        periods = ", ".join(f"{month:%Y-%m}" for month in result.months)
        totals = ", ".join(
            f"EffectiveCost {format_money(report.effective_cost[currency], currency)}"
            for currency in sorted(report.effective_cost)
        )
        console.print(
            f"{name}: {report.rows:,} rows for {periods} in {result.seconds:.1f} s"
            f"{'; ' + totals if totals else ''}; replaced {report.replaced_slices} slice(s).",
            highlight=False,
            markup=False,
        )
        for note in result.notes:
            console.print(f"{name}: {note}", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)
