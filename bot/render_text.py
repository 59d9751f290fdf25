"""Plain-text rendering of replies, for the terminal, JSON output and logs."""

from __future__ import annotations

from skills.money import format_money
from skills.replies import Cell, Reply, Table


def format_cell(table: Table, index: int, value: Cell) -> str:
    """A table cell as shown to people: money with currency, numbers grouped, the rest as text.

    Numbers other than money keep at most four decimals: 2,118,228,283 tokens, 5,145.76 hours.
    """
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if index in table.money_columns and isinstance(value, int | float):
        return format_money(float(value), table.currency)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return value


def render_table(table: Table) -> str:
    """Columns aligned with spaces; money right-aligned."""
    cells = [
        [format_cell(table, index, value) for index, value in enumerate(row)] for row in table.rows
    ]
    widths = [
        max(len(str(heading)), *(len(row[index]) for row in cells))
        for index, heading in enumerate(table.columns)
    ]

    def line(values: list[str]) -> str:
        parts = [
            value.rjust(width) if index in table.money_columns else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(
        [line(list(table.columns)), line(["-" * width for width in widths]), *map(line, cells)]
    )


def render_plain(reply: Reply) -> str:
    """The whole reply as plain text: headline, table, then the context line."""
    parts = [reply.text]
    if reply.table and reply.table.rows:
        parts.append(render_table(reply.table))
    if reply.context:
        parts.append(reply.context)
    return "\n\n".join(parts)
