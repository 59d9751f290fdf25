"""What the execution path reports as it runs: a no-op base that metrics (or tests) extend."""

from __future__ import annotations

from typing import Any


class Observer:
    """Receives skill runs and LLM usage from `bot.pipeline.Assistant`; this base ignores them."""

    def skill_ran(self, skill: str, outcome: str, seconds: float) -> None:
        """One skill call finished with `outcome` (ok, error, pending, incident)."""

    def llm_used(self, usage: dict[str, Any]) -> None:
        """One LLM answer's usage: model, token counts and cost_usd (None when unpriced)."""
