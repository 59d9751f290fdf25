"""``spendbot teams-package`` (the Teams app package) and ``teams-post`` (a proactive post)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from bot.pipeline import Assistant
from bot.settings import Settings
from bot.teams_package import PLACEHOLDER_ID, build_package
from bot.teams_proactive import TeamsPoster
from skills.catalog import load_skills
from storage.database import open_database


def teams_package(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path(
        "dist/spendbot-teams.zip"
    ),
    app_id: Annotated[
        str | None,
        typer.Option(help="The bot's Microsoft App ID; default: MICROSOFT_APP_ID."),
    ] = None,
) -> None:
    """Zip manifests/teams into an app package for Teams (Apps > Manage your apps > Upload)."""
    app_id = app_id or Settings().microsoft_app_id
    path = build_package(out, app_id)
    typer.echo(f"wrote {path} (app id {app_id or PLACEHOLDER_ID})")
    if not app_id:
        typer.echo(
            "set MICROSOFT_APP_ID (or --app-id) to the bot's id before uploading it", err=True
        )


def teams_post(
    conversation: Annotated[
        str, typer.Argument(help="A channel or chat name, or a conversation id, the bot is in.")
    ],
    question: Annotated[str, typer.Argument(help="What to post, e.g. 'weekly digest'.")],
) -> None:
    """Answer a question and post it as a card into a Teams conversation the bot was added to."""
    try:
        operator = f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        operator = "cli"
    settings = Settings()
    engine = open_database(settings.database_url)
    reply = Assistant(settings, engine, load_skills()).ask(question, operator, command=True).reply
    try:
        message = TeamsPoster(settings, engine).post(conversation, reply)
    except LookupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    finally:
        engine.dispose()
    typer.echo(f"posted to {conversation} (message {message})")
