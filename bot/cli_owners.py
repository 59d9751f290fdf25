"""``spendbot budgets ...`` and ``spendbot owners ...``: operator commands for budgets and owners.

These write the store directly, like ``spendbot roles grant``: they are for operators with
database access, and every change is audited. Chat users change budgets and rules through the
guarded skills (budget_set, owner_assign).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.budget_alerts import budget_notices
from skills.catalog import load_skills
from storage import allocation, audit, budget_links
from storage import budgets as budget_store
from storage.database import open_database

budgets_app = typer.Typer(help="Budgets: evaluate alerts, import from CSV.", no_args_is_help=True)
owners_app = typer.Typer(
    help="Owners of spend: contacts and allocation rules.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)


def cli_operator() -> str:
    """Who ran a CLI command that writes the store directly (an operator with database access)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@budgets_app.command("check")
def budgets_check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the alerts as a JSON list.")
    ] = False,
    fallback: Annotated[
        str | None, typer.Option(help="Where alerts go when neither budget nor owner says.")
    ] = None,
) -> None:
    """Evaluate every budget now; print the thresholds that fired for the first time this period.

    Each alert reads as the scheduled budget alerts post it, with its drivers and fixes.
    Running it again fires nothing new until another threshold is crossed or a period starts.
    """
    settings = Settings()
    assistant = Assistant(settings, open_database(settings.database_url), load_skills())
    notices = budget_notices(assistant.context(cli_operator()), fallback)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "budget": alert.budget.as_dict(),
                        "period_start": alert.period_start.isoformat(),
                        "kind": alert.kind,
                        "percent": alert.percent,
                        "also": list(alert.also),
                        "notify": alert.notify,
                        "message": alert.message,
                        "text": notice.reply.text,
                        "fixes": notice.reply.data["fixes"],
                        "status": alert.status.as_dict(),
                    }
                    for notice in notices
                    for alert in [notice.alert]
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not notices:
        _say("No new budget alerts.")
    for notice in notices:
        _say(f"[{notice.target or 'no target'}] {notice.reply.text}")


@budgets_app.command("import")
def budgets_import(
    path: Annotated[
        Path, typer.Argument(help="CSV: scope,value,period,amount[,currency][,notify][,parent]")
    ],
) -> None:
    """Set budgets from a CSV file (replacing those with the same scope and period); audited."""
    settings = Settings()
    engine = open_database(settings.database_url)
    try:
        rows = budget_store.parse_csv(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        errors.print(f"error: {error}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    now, actor = settings.current_time(), cli_operator()
    stored: list[tuple[budget_store.Budget, tuple[str, str] | None]] = []
    with engine.begin() as connection:
        for row in rows:
            budget, previous = budget_store.upsert(
                connection,
                scope=row.scope,
                scope_value=row.scope_value,
                period=row.period,
                amount=row.amount,
                currency=row.currency,
                notify=row.notify,
                by=actor,
                at=now,
            )
            audit.record(
                connection,
                at=now,
                actor=actor,
                event="budget_set",
                detail={
                    "budget": budget.as_dict(),
                    "previous": previous.as_dict() if previous else None,
                    "source": str(path),
                },
            )
            stored.append((budget, row.parent))
        try:
            for budget, parent in stored:
                if parent:
                    budget_links.link_to_scope(connection, budget, *parent)
        except ValueError as error:
            errors.print(f"error: {error}", highlight=False, markup=False)
            raise typer.Exit(2) from None
    _say(f"Imported {len(rows)} budget{'s' if len(rows) != 1 else ''} from {path}.")


@owners_app.command("contact")
def owners_contact(
    owner: Annotated[str, typer.Argument(help="The owner (team) name, as in spend by owner.")],
    contact: Annotated[str, typer.Argument(help="slack:#channel, slack:U123, teams:<id>, ...")],
) -> None:
    """Set where an owner is notified (budgets, anomalies, idle GPUs); audited."""
    settings = Settings()
    engine = open_database(settings.database_url)
    now, actor = settings.current_time(), cli_operator()
    with engine.begin() as connection:
        allocation.set_contact(connection, owner, contact, by=actor, at=now)
        audit.record(
            connection,
            at=now,
            actor=actor,
            event="allocation_changed",
            detail={"owner": owner, "contact": contact},
        )
    _say(f"{owner} is notified at {contact}.")


@owners_app.command("list")
def owners_list() -> None:
    """List owners with their contacts, and the allocation rules in the order they are tried."""
    engine = open_database(Settings().database_url)
    known = allocation.contacts(engine)
    for name in allocation.owner_names(engine):
        _say(f"{name}  {known.get(name, '(no contact)')}")
    with engine.connect() as connection:
        for rule in allocation.list_rules(connection):
            _say(f"rule #{rule.id} ({rule.kind}): {rule.describe()} -> {rule.owner}")


@owners_app.command("split")
def owners_split(
    pool: Annotated[str, typer.Argument(help="The owner whose spend is shared, e.g. platform.")],
    method: Annotated[str, typer.Option(help="even, fixed or proportional.")] = "proportional",
    among: Annotated[
        str,
        typer.Option(
            help="Owners to share among: 'a,b' (even, proportional; empty: every owner with "
            "spend) or 'a=60,b=40' (fixed)."
        ),
    ] = "",
) -> None:
    """Share one owner's spend (a shared-cost pool) across others in showback; audited."""
    parts = [part.strip() for part in among.split(",") if part.strip()]
    try:
        if method == "fixed":
            shares = tuple((k.strip(), float(v)) for k, _, v in (p.partition("=") for p in parts))
            split = allocation.Split(pool, method, percentages=shares)
        else:
            split = allocation.Split(pool, method, owners=tuple(parts))
    except ValueError as error:
        errors.print(f"error: {error}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    settings = Settings()
    engine = open_database(settings.database_url)
    now, actor = settings.current_time(), cli_operator()
    with engine.begin() as connection:
        allocation.set_split(connection, split, by=actor, at=now)
        audit.record(
            connection,
            at=now,
            actor=actor,
            event="allocation_changed",
            detail={"split": {"pool": pool, "method": method, "among": among}},
        )
    how = {"even": "evenly", "fixed": "by fixed percentages", "proportional": "by spend"}[method]
    _say(f"{pool}'s spend is now shared {how}" + (f" among {among}." if among else "."))
