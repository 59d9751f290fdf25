"""The terminal transport: an interactive chat loop and rich rendering of replies."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table as RichTable

from bot.pipeline import Assistant
from bot.render_text import format_cell
from skills.replies import Reply

PROMPT = "you> "
EXIT_WORDS = frozenset({"exit", "quit", "bye", ":q"})


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


def run_chat(assistant: Assistant, console: Console, user: str, *, interactive: bool) -> None:
    """Read questions until end of input or an exit word; answer each."""
    if interactive:
        console.print(
            "spendbot: ask about spend, e.g. 'spend by provider last month'. Type 'help' or 'exit'."
        )
    for line in _lines(console, interactive):
        question = line.strip()
        if not question:
            continue
        if question.lower() in EXIT_WORDS:
            break
        if not interactive:
            console.print(f"{PROMPT}{question}", style="bold", highlight=False, markup=False)
        print_reply(console, assistant.ask(question, user).reply)
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
