"""The ``spendbot`` command line: ingest data, chat in the terminal, ask one question."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.cli_access import audit, roles_app
from bot.cli_data import demo_data, ingest, sync
from bot.logging_setup import LogFormat, configure_logging
from bot.pipeline import Answer, Assistant
from bot.render_text import render_plain
from bot.settings import Settings
from bot.terminal import print_pending, print_reply, run_chat
from skills.catalog import load_skills
from skills.errors import UserError
from skills.identities import parse_identity
from skills.replies import Reply
from storage.actions import list_actions
from storage.database import open_database

app = typer.Typer(
    help="spendbot: FinOps for AI infrastructure, in chat.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(roles_app, name="roles")
console = Console()
errors = Console(stderr=True)


def _assistant(settings: Settings) -> Assistant:
    return Assistant(settings, open_database(settings.database_url), load_skills())


app.command()(ingest)
app.command("demo-data")(demo_data)


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
    user: Annotated[
        str, typer.Option("--as", help="Who is asking: a name, or slack:U123 / teams:<id>.")
    ] = "terminal",
) -> None:
    """Answer one question and exit (non-zero when it could not be answered)."""
    answer = _assistant(Settings()).ask(question, _identity(user))
    if as_json:
        print(_answer_json(answer))
    else:
        print_reply(console, answer.reply)
        if sql and "sql" in answer.reply.data:
            console.print(answer.reply.data["sql"], highlight=False, markup=False)
    if answer.reply.is_error:
        raise typer.Exit(1)


@app.command()
def chat(
    user: Annotated[
        str, typer.Option("--as", help="Who is asking: a name, or slack:U123 / teams:<id>.")
    ] = "terminal",
) -> None:
    """Chat in the terminal; with piped input, answer each line and exit."""
    run_chat(_assistant(Settings()), console, _identity(user), interactive=sys.stdin.isatty())


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default SPENDBOT_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (default SPENDBOT_PORT or 3978).")
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="json or text log lines (default: json unless stderr is a terminal)."),
    ] = None,
) -> None:
    """Serve Slack (/slack/events or Socket Mode), Teams (/api/messages), /healthz, /metrics."""
    from bot.server import serve as run_server  # the web stack loads only for this command

    settings = Settings()
    configure_logging(settings, log_format or ("text" if sys.stderr.isatty() else "json"))
    bind_host, bind_port = host or settings.host, settings.port if port is None else port
    errors.print(f"spendbot serving on http://{bind_host}:{bind_port} (Ctrl-C stops it)")
    run_server(settings, _assistant(settings), bind_host, bind_port)


@app.command("skills")
def list_skills() -> None:
    """List every skill with its risk and help line."""
    for skill in load_skills():
        console.print(
            f"[bold]{skill.name}[/bold] ({skill.risk}, /spend {skill.command}): {skill.summary}"
        )


def _identity(user: str) -> str:
    """`--as` values: a bare name is a terminal user; slack:U1 or teams:<id> are taken as given."""
    try:
        return parse_identity(user)
    except UserError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None


def _finish(reply: Reply) -> None:
    print_reply(console, reply)
    if reply.is_error:
        raise typer.Exit(1)


@app.command()
def actions(
    recent: Annotated[
        bool, typer.Option("--recent", help="Every state, newest first, not only pending.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the actions as JSON.")] = False,
) -> None:
    """List guarded actions waiting for approval (or recent ones)."""
    assistant = _assistant(Settings())
    found = assistant.approvals.pending() if not recent else list_actions(assistant.engine)
    if as_json:
        print(json.dumps([action.as_dict() for action in found], indent=2, default=str))
    elif not found:
        console.print("No actions are waiting for approval." if not recent else "No actions yet.")
    elif recent:
        for action in found:
            console.print(
                f"#{action.id} {action.state}: {action.summary} (asked by {action.requested_by} "
                f"at {action.requested_at:%Y-%m-%d %H:%M} UTC)",
                highlight=False,
                markup=False,
            )
    else:
        print_pending(console, assistant)


@app.command()
def approve(
    action_id: Annotated[int, typer.Argument(help="The action number, e.g. 12.")],
    user: Annotated[str, typer.Option("--as", help="Who approves: alice, slack:U1, teams:ID.")],
) -> None:
    """Approve a pending action; it runs once it has the approvals its policy needs."""
    _finish(_assistant(Settings()).approve(action_id, _identity(user)))


@app.command()
def deny(
    action_id: Annotated[int, typer.Argument(help="The action number, e.g. 12.")],
    user: Annotated[str, typer.Option("--as", help="Who denies: alice, slack:U1, teams:ID.")],
    reason: Annotated[str | None, typer.Option(help="Why, recorded in the audit log.")] = None,
) -> None:
    """Deny a pending action (or withdraw your own); it never runs."""
    _finish(_assistant(Settings()).deny(action_id, _identity(user), reason))


@app.command()
def resume() -> None:
    """Run approved actions a restart left unclaimed; report ones interrupted mid-run."""
    replies = _assistant(Settings()).resume()
    for reply in replies:
        print_reply(console, reply)
    if not replies:
        console.print("Nothing to resume.")
    if any(reply.is_error for reply in replies):
        raise typer.Exit(1)


app.command()(audit)


def _run_skill(name: str, args: dict) -> Reply:
    """Run one skill for the terminal user through the one execution path."""
    assistant = _assistant(Settings())
    skill = assistant.registry.get(name)
    if skill is None:  # pragma: no cover - the catalog always loads it
        raise typer.Exit(1)
    return assistant.execute(skill, args, "terminal:cli")


@app.command()
def anomalies(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the alerts as a JSON list.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="First day to check, e.g. 2026-11-01 (default: last 30 days)."),
    ] = None,
    min_impact: Annotated[
        float, typer.Option(help="Smallest difference from expected worth an alert, per day.")
    ] = 100.0,
    team: Annotated[str | None, typer.Option(help="Only anomalies owned by this team.")] = None,
) -> None:
    """Run cost anomaly detection now: one alert per root cause, worst first."""
    args: dict = {"min_impact": min_impact, "team": team}
    if since:
        args["period"] = f"since {since}"
    reply = _run_skill("anomaly_list", args)
    if as_json and not reply.is_error:
        print(json.dumps(reply.data["alerts"], indent=2, ensure_ascii=False))
        return
    print_reply(errors if reply.is_error else console, reply)
    if reply.is_error:
        raise typer.Exit(1)


@app.command()
def digest(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: text and data.")
    ] = False,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="Restrict to team=NAME, provider=, service= or sub_account=."),
    ] = None,
    period: Annotated[str, typer.Option(help="The week (or period) to summarize.")] = "last week",
    chart: Annotated[Path | None, typer.Option(help="Write the chart (PNG) to this file.")] = None,
) -> None:
    """Render the weekly digest now: spend, top movers, unallocated, open anomalies, chart."""
    scopes: dict[str, str] = {}
    for item in scope or []:
        key, _, value = item.partition("=")
        if not key.strip() or not value.strip():
            errors.print(f"error: --scope takes KEY=VALUE, such as team=research, not {item!r}")
            raise typer.Exit(2)
        scopes[key.strip()] = value.strip()
    reply = _run_skill("digest_show", {"period": period, "scope": scopes})
    if reply.is_error:
        print_reply(errors, reply)
        raise typer.Exit(1)
    if chart and reply.chart:
        chart.write_bytes(reply.chart)
    if as_json:
        print(
            json.dumps(
                {"text": render_plain(reply), "data": reply.data},
                indent=2,
                default=str,
                ensure_ascii=False,
            )
        )
        return
    print_reply(console, reply)
    if chart:
        console.print(f"Chart written to {chart}", highlight=False, markup=False)


@app.command("mcp")
def mcp_serve(
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to bind with --http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port with --http.")] = 8765,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes", help="Also offer guarded skills; they only create pending actions."
        ),
    ] = False,
    user: Annotated[str, typer.Option("--as", help="Who the MCP client acts as.")] = "mcp",
) -> None:
    """Serve the skills to MCP clients (stdio, or streamable HTTP); read-only by default."""
    from bot.mcp_server import build_server, serve_http, serve_stdio

    server = build_server(
        _assistant(Settings()), f"mcp:{user.removeprefix('mcp:')}", allow_writes=allow_writes
    )
    if http:
        serve_http(server, host, port)
    else:
        serve_stdio(server)


app.command()(sync)


# Budgets and owners (bot/cli_owners.py) -------------------------------------------------------

from bot.cli_owners import budgets_app, owners_app  # noqa: E402

app.add_typer(budgets_app, name="budgets")
app.add_typer(owners_app, name="owners")

# Unit economics (bot/cli_units.py) ------------------------------------------------------------

from bot.cli_units import ingest_metric  # noqa: E402

app.command("ingest-metric")(ingest_metric)

from bot.cli_teams import teams_package, teams_post  # noqa: E402

app.command("teams-package")(teams_package)
app.command("teams-post")(teams_post)

# The GPU agent (bot/cli_gpus.py) --------------------------------------------------------------

from bot.cli_gpus import agent  # noqa: E402

app.command("agent")(agent)

# Schedules (bot/cli_schedules.py) -------------------------------------------------------------

from bot.cli_schedules import schedules_app  # noqa: E402

app.add_typer(schedules_app, name="schedules")

from bot.cli_housekeeping import housekeeping  # noqa: E402

app.command("housekeeping")(housekeeping)
