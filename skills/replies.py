"""Platform-neutral replies that skills return and transports render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Cell = str | float | int | None


@dataclass(frozen=True)
class Table:
    """A small table: column headings, rows, and which columns hold money."""

    columns: list[str]
    rows: list[list[Cell]]
    money_columns: frozenset[int] = frozenset()
    currency: str = "USD"


@dataclass(frozen=True)
class Reply:
    """What a skill answers: headline text, an optional table, context, and structured data.

    `chart` is an optional PNG image (bytes, kept out of `data` so data stays JSON) that a
    transport uploads or attaches next to the text.
    """

    text: str
    table: Table | None = None
    context: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    is_error: bool = False
    chart: bytes | None = None
