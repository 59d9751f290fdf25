"""The ``spendbot`` command line: ingest data, chat in the terminal, ask one question."""

from __future__ import annotations

import json
import sys
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

from bot.pipeline import Answer, Assistant
from bot.render_text import render_plain
from bot.settings import Settings
from bot.terminal import print_reply, run_chat
from skills.catalog import load_skills
from skills.errors import UserError
from skills.money import format_money
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import IngestReport, ingest_files, ingest_frame

app = typer.Typer(
    help="spendbot: FinOps for AI infrastructure, in chat.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)


def _assistant(settings: Settings) -> Assistant:
    return Assistant(settings, open_database(settings.database_url), load_skills())


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


@app.command()
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


@app.command("demo-data")
def demo_data(
    days: Annotated[int, typer.Option(help="Days of history, ending yesterday.")] = 120,
    csv: Annotated[
        Path | None, typer.Option(help="Also write the generated FOCUS rows to this CSV file.")
    ] = None,
) -> None:
    """Generate realistic AI-infrastructure spend in FOCUS form and load it."""
    settings = Settings()
    frame = generate_demo_focus(settings.current_time().date() - timedelta(days=1), days=days)
    if csv:
        frame.to_csv(csv, index=False, na_rep="NULL")
        console.print(f"Wrote {len(frame):,} rows to {csv}")
    _print_report(ingest_frame(open_database(settings.database_url), frame, "demo data"))


def _answer_json(answer: Answer) -> str:
    return json.dumps(
        {
            "text": render_plain(answer.reply),
            "tool_calls": answer.tool_calls,
            "data": answer.reply.data,
        },
        indent=2,
        default=str,
        ensure_ascii=False,
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question, e.g. 'spend by team last month'.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: text, tool_calls, data.")
    ] = False,
    sql: Annotated[
        bool, typer.Option("--sql", help="Also print the SQL behind the figures.")
    ] = False,
    user: Annotated[str, typer.Option("--as", help="Who is asking.")] = "terminal",
) -> None:
    """Answer one question and exit (non-zero when it could not be answered)."""
    answer = _assistant(Settings()).ask(question, f"terminal:{user}")
    if as_json:
        print(_answer_json(answer))
    else:
        print_reply(console, answer.reply)
        if sql and "sql" in answer.reply.data:
            console.print(answer.reply.data["sql"], highlight=False, markup=False)
    if answer.reply.is_error:
        raise typer.Exit(1)


@app.command()
def chat(user: Annotated[str, typer.Option("--as", help="Who is asking.")] = "terminal") -> None:
    """Chat in the terminal; with piped input, answer each line and exit."""
    run_chat(_assistant(Settings()), console, f"terminal:{user}", interactive=sys.stdin.isatty())


@app.command("skills")
def list_skills() -> None:
    """List every skill with its risk and help line."""
    for skill in load_skills():
        console.print(
            f"[bold]{skill.name}[/bold] ({skill.risk}, /spend {skill.command}): {skill.summary}"
        )
