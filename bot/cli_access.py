"""``spendbot roles ...`` and ``spendbot audit``: who may run guarded skills, and what happened."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from bot.cli_owners import cli_operator
from bot.settings import Settings
from skills.errors import UserError
from skills.roles import RoleArgs
from storage import audit as audit_store
from storage import roles as role_store
from storage.database import open_database

roles_app = typer.Typer(help="Who may run and approve guarded skills.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _role_args(user: str, role: str, team: str | None) -> RoleArgs:
    try:
        return RoleArgs(identity=user, role=role, team=team)
    except (UserError, ValueError) as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, markup=False)
        raise typer.Exit(2) from None


def _change_role(args: RoleArgs, grant: bool) -> None:
    """Grant or revoke a role straight in the store, auditing a change (not a no-op)."""
    settings = Settings()
    engine = open_database(settings.database_url)
    now = settings.current_time()
    with engine.begin() as connection:
        if grant:
            changed = role_store.grant(
                connection, args.identity, args.role, args.scope, by=cli_operator(), at=now
            )
        else:
            changed = role_store.revoke(connection, args.identity, args.role, args.scope)
        if changed:
            audit_store.record(
                connection,
                at=now,
                actor=cli_operator(),
                event="role_granted" if grant else "role_revoked",
                detail={"identity": args.identity, "role": args.role, "team": args.scope},
            )
    verbs = {(True, True): "now holds", (True, False): "already held"}
    verbs |= {(False, True): "no longer holds", (False, False): "did not hold"}
    console.print(
        f"{args.identity} {verbs[grant, changed]} {args.describe()}.", highlight=False, markup=False
    )


@roles_app.command("grant")
def roles_grant(
    user: Annotated[str, typer.Argument(help="alice, slack:U123, slack-group:S456, teams:ID")],
    role: Annotated[str, typer.Argument(help="admin, finops, owner, ...")],
    team: Annotated[str | None, typer.Option(help="Only for this team.")] = None,
) -> None:
    """Grant a role directly in the store (how the first admin is made); audited."""
    _change_role(_role_args(user, role, team), grant=True)


@roles_app.command("revoke")
def roles_revoke(
    user: Annotated[str, typer.Argument(help="alice, slack:U123, slack-group:S456, teams:ID")],
    role: Annotated[str, typer.Argument(help="admin, finops, owner, ...")],
    team: Annotated[str | None, typer.Option(help="Only for this team.")] = None,
) -> None:
    """Revoke a role directly in the store; audited."""
    _change_role(_role_args(user, role, team), grant=False)


@roles_app.command("list")
def roles_list() -> None:
    """List every role grant."""
    grants = role_store.list_grants(open_database(Settings().database_url))
    if not grants:
        console.print("No roles granted yet. Make the first admin: spendbot roles grant NAME admin")
    for grant in grants:
        team = "every team" if grant.team == role_store.ALL_TEAMS else f"team {grant.team}"
        console.print(
            f"{grant.identity}  {grant.role}  ({team}; granted by {grant.granted_by} "
            f"at {grant.granted_at:%Y-%m-%d %H:%M} UTC)",
            highlight=False,
            markup=False,
        )


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        errors.print(f"[red]error:[/red] {option} takes a date such as 2026-11-01")
        raise typer.Exit(2) from None


def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")] = False,
    since: Annotated[str | None, typer.Option(help="From this date/time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this date/time (UTC).")] = None,
    actor: Annotated[str | None, typer.Option(help="Identity, or part of one.")] = None,
    skill: Annotated[str | None, typer.Option(help="Only events of this skill.")] = None,
    event: Annotated[str | None, typer.Option(help="Only this event kind.")] = None,
) -> None:
    """Export the audit log: every guarded call, approval, refusal, run and result."""
    if as_json and as_csv:
        errors.print("[red]error:[/red] choose one of --json and --csv")
        raise typer.Exit(2)
    entries = audit_store.query(
        open_database(Settings().database_url),
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        actor=actor,
        skill=skill,
        events=(event,) if event else (),
    )
    rows = [entry.as_dict() for entry in entries]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "at", "actor", "event", "skill", "action_id", "detail"])
        for row in rows:
            writer.writerow(
                [
                    row["id"],
                    row["at"],
                    row["actor"],
                    row["event"],
                    row["skill"] or "",
                    row["action_id"] if row["action_id"] is not None else "",
                    json.dumps(row["detail"], sort_keys=True, default=str),
                ]
            )
        return
    if not rows:
        console.print("No audit events.")
    for row in rows:
        action = f" #{row['action_id']}" if row["action_id"] is not None else ""
        console.print(
            f"{row['at']}  {row['actor']}  {row['event']}  {row['skill'] or ''}{action}  "
            f"{json.dumps(row['detail'], default=str)[:160]}",
            highlight=False,
            markup=False,
        )
