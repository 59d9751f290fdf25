"""The terminal transport: an interactive chat loop and rich rendering of replies."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table as RichTable

from bot.pipeline import Assistant
from bot.render_text import format_cell
from skills.replies import Reply

PROMPT = "you> "
EXIT_WORDS = frozenset({"exit", "quit", "bye", ":q"})
DECISION = re.compile(r"(approve|deny)\s+#?(\d+)\b\s*(.*)", re.IGNORECASE)
"""`approve 12` / `deny 12 reason` typed in chat: a person's decision, never routed to a skill."""


def print_reply(console: Console, reply: Reply) -> None:
    """Print a reply with its table and context line."""
    style = "yellow" if reply.is_error else None
    console.print(reply.text, style=style, highlight=False, markup=False)
    table = reply.table
    if table and table.rows:
        rich_table = RichTable(show_edge=False, header_style="bold")
        for index, heading in enumerate(table.columns):
            rich_table.add_column(
                heading, justify="right" if index in table.money_columns else "left"
            )
        for row in table.rows:
            rich_table.add_row(
                *(format_cell(table, index, value) for index, value in enumerate(row))
            )
        console.print(rich_table)
    if reply.context:
        console.print(reply.context, style="dim", highlight=False, markup=False)


def print_pending(console: Console, assistant: Assistant) -> None:
    """List actions waiting for approval, with how to decide; nothing when there are none."""
    pending = assistant.approvals.pending()
    if not pending:
        return
    console.print(f"{len(pending)} action(s) waiting for approval:", style="bold")
    for action in pending:
        console.print(
            f"  #{action.id} {action.summary} (asked by {action.requested_by}, "
            f"expires {action.expires_at:%Y-%m-%d %H:%M} UTC)",
            highlight=False,
            markup=False,
        )
    console.print("Type 'approve ID' or 'deny ID [reason]' to decide.", style="dim", markup=False)
    console.print()


def decide(assistant: Assistant, text: str, user: str) -> Reply | None:
    """Act on `approve ID` / `deny ID [reason]` as `user` (policy still applies); else None."""
    match = DECISION.fullmatch(text.strip())
    if not match:
        return None
    verb, number, reason = match.group(1).lower(), int(match.group(2)), match.group(3).strip()
    if verb == "approve":
        return assistant.approve(number, user)
    return assistant.deny(number, user, reason or None)


def run_chat(assistant: Assistant, console: Console, user: str, *, interactive: bool) -> None:
    """Read questions until end of input or an exit word; answer each.

    On start it resumes actions a restart left behind and lists pending ones; `approve ID` and
    `deny ID` lines decide as the chat user.
    """
    if interactive:
        console.print(
            "spendbot: ask about spend, e.g. 'spend by provider last month'. Type 'help' or 'exit'."
        )
    for reply in assistant.resume():
        print_reply(console, reply)
        console.print()
    print_pending(console, assistant)
    # One conversation per chat session, so follow-ups ("and last month?") work with the LLM.
    session = f"terminal:{user.removeprefix('terminal:')}:{uuid.uuid4().hex[:12]}"
    for line in _lines(console, interactive):
        question = line.strip()
        if not question:
            continue
        if question.lower() in EXIT_WORDS:
            break
        if not interactive:
            console.print(f"{PROMPT}{question}", style="bold", highlight=False, markup=False)
        reply = (
            decide(assistant, question, user)
            or assistant.ask(question, user, conversation=session).reply
        )
        print_reply(console, reply)
        if reply.data.get("needs_approval") and not reply.is_error:
            number = reply.data["action"]["id"]
            console.print(
                f"An approver can type 'approve {number}' here or run "
                f"'spendbot approve {number} --as NAME'; 'deny {number}' withdraws it.",
                style="dim",
            )
        console.print()


def _lines(console: Console, interactive: bool) -> Iterator[str]:
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield console.input(f"[bold]{PROMPT}[/bold]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
