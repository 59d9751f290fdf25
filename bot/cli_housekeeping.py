"""``spendbot housekeeping``: the daily housekeeping job's pass over the store, run once."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from bot.housekeeping import housekeep
from bot.settings import Settings
from storage.clock import utc_now
from storage.database import open_database

console = Console()


def housekeeping(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete chat delivery claims and scheduler run history past their retention."""
    settings = Settings()
    engine = open_database(settings.database_url)
    pruned = housekeep(engine, settings, utc_now(), dry_run=dry_run)
    engine.dispose()
    console.print(f"Housekeeping: {pruned.summary}.", highlight=False, markup=False)
