"""The ``spendbot`` command line: ingest data, chat in the terminal, ask one question."""

from __future__ import annotations

import csv
import getpass
import json
import sys
from datetime import datetime, timedelta
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

from bot.logging_setup import LogFormat, configure_logging
from bot.pipeline import Answer, Assistant
from bot.render_text import render_plain
from bot.settings import Settings
from bot.terminal import print_pending, print_reply, run_chat
from skills.catalog import load_skills
from skills.errors import UserError
from skills.identities import parse_identity
from skills.money import format_money
from skills.replies import Reply
from skills.roles import RoleArgs
from storage import audit as audit_store
from storage import roles as role_store
from storage.actions import list_actions
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.demo_gpus import load_demo_gpu_samples
from storage.ingest import IngestReport, ingest_files, ingest_frame

app = typer.Typer(
    help="spendbot: FinOps for AI infrastructure, in chat.",
    no_args_is_help=True,
    add_completion=False,
)
roles_app = typer.Typer(help="Who may run and approve guarded skills.", no_args_is_help=True)
app.add_typer(roles_app, name="roles")
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


def _operator() -> str:
    """Who ran a CLI command that writes the store directly (an operator with database access)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


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
                connection, args.identity, args.role, args.scope, by=_operator(), at=now
            )
        else:
            changed = role_store.revoke(connection, args.identity, args.role, args.scope)
        if changed:
            audit_store.record(
                connection,
                at=now,
                actor=_operator(),
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


@app.command()
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


@app.command()
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
