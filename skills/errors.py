"""Errors a skill shows to the user as-is, with a hint on what to do instead."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for, shown verbatim with an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
