"""What the bot reports as it runs: a no-op base that metrics (or tests) extend."""

from __future__ import annotations

from typing import Any


class Observer:
    """Receives skill runs, LLM usage, job runs, loads and failures; this base ignores them.

    The assistant holds one (`Assistant.observer`), so every part that has the assistant reports
    through it: the execution path, the scheduler, ingest routes and the Slack app.
    """

    def skill_ran(self, skill: str, outcome: str, seconds: float) -> None:
        """One skill call finished with `outcome` (ok, error, pending, incident)."""

    def llm_used(self, usage: dict[str, Any]) -> None:
        """One LLM answer's usage: model, token counts and cost_usd (None when unpriced)."""

    def scheduler_run(self, job: str, outcome: str) -> None:
        """A scheduled job of kind `job` ran with `outcome` (ok, failed, missed, skipped)."""

    def ingest_rows(self, source: str, rows: int) -> None:
        """`rows` rows were loaded from `source`."""

    def failed(self, where: str) -> None:
        """An unexpected failure happened in `where` (logged there)."""
