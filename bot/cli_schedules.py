"""``spendbot schedules ...``: list the stored jobs and their recent runs, run one now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.settings import Settings
from skills.catalog import load_skills
from storage import schedules
from storage.database import open_database

schedules_app = typer.Typer(
    help="Scheduled digests, anomaly scans, budget checks and syncs.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@schedules_app.command("list")
def list_command(
    runs: Annotated[int, typer.Option(help="Also show this many recent runs per job.")] = 0,
) -> None:
    """List scheduled jobs with their next run (UTC), and optionally their recent runs."""
    engine = open_database(Settings().database_url)
    found = schedules.list_schedules(engine)
    if not found:
        _say("Nothing is scheduled.")
    for item in found:
        next_run = f"{item.next_run:%Y-%m-%d %H:%M} UTC" if item.next_run else "paused"
        _say(f"{item.id}: {item.kind} to {item.target or '-'}, {item.when}; next {next_run}")
        for run in schedules.runs(engine, item.id)[:runs]:
            _say(
                f"  {run['fire_time']:%Y-%m-%d %H:%M:%S} {run['outcome'] or 'running'} "
                f"on {run['claimed_by']}: {run['detail'] or ''}"
            )
    engine.dispose()


@schedules_app.command("run-now")
def run_now(job_id: Annotated[str, typer.Argument(help="The job's id, from `list`.")]) -> None:
    """Run one job now, once, outside its timetable (posting where it posts)."""
    settings = Settings()
    assistant = Assistant(settings, open_database(settings.database_url), load_skills())
    if schedules.get(assistant.engine, job_id) is None:
        errors.print(f"No job {job_id!r} (see `spendbot schedules list`).", markup=False)
        raise typer.Exit(1)
    scheduler = Scheduler(JobRuntime(assistant, notifier(settings, assistant.engine)))
    event = scheduler.fire(job_id, datetime.now(UTC))
    assistant.engine.dispose()
    if event is None:
        errors.print(f"{job_id}: another replica is running it right now.", markup=False)
        raise typer.Exit(1)
    if event.exception is not None:
        errors.print(f"{job_id}: failed: {event.exception}", markup=False)
        raise typer.Exit(1)
    _say(f"{job_id}: {event.retval}")
