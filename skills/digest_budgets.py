"""Budgets and spendbot's own LLM cost in the digest: one line each, figures in the reply data."""

from __future__ import annotations

from datetime import datetime

from skills.budgeting import BudgetStatus, budget_status
from skills.money import format_money, format_small_money
from skills.registry import SkillContext
from storage.budgets import Budget, list_budgets
from storage.conversations import spend_by_model
from storage.cost_series import TEAM_TAG
from storage.costs import OWNER, Filter

ORDER = {"over": 0, "at risk": 1, "on track": 2}


def _in_scope(budget: Budget, filters: tuple[Filter, ...], currency: str) -> bool:
    """Budgets in the digest's currency; for a team's digest, that team's budgets only."""
    if budget.currency != currency:
        return False
    if not filters:
        return True
    team = filters[0].values[0] if len(filters) == 1 and filters[0].dimension == TEAM_TAG else None
    return team is not None and (budget.scope, budget.scope_value) in (
        (OWNER, team),
        (TEAM_TAG, team),
    )


def budget_statuses(
    context: SkillContext, filters: tuple[Filter, ...], currency: str
) -> list[BudgetStatus]:
    """Where each budget in scope stands today, worst first (over, at risk, on track)."""
    with context.engine.connect() as connection:
        budgets = [b for b in list_budgets(connection) if _in_scope(b, filters, currency)]
    statuses = [
        budget_status(context.engine, b, context.now, with_drivers=False, costs=context.costs)
        for b in budgets
    ]
    return sorted(statuses, key=lambda s: (ORDER[s.state], -s.forecast_pct))


def budget_line(statuses: list[BudgetStatus], currency: str) -> str | None:
    """'Budgets: 1 over, 1 at risk, 3 on track; worst: ...', or None without budgets."""
    if not statuses:
        return None
    counts = {state: sum(s.state == state for s in statuses) for state in ORDER}
    summary = ", ".join(f"{count} {state}" for state, count in counts.items() if count)
    worst = statuses[0]
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    return (
        f"Budgets: {summary}; {'worst' if worst.state != 'on track' else 'closest'}: "
        f"{worst.budget.label} ({worst.budget.period}) {money(worst.actual)} of "
        f"{money(worst.budget.amount)} so far, forecast {money(worst.forecast)} "
        f"({worst.forecast_pct:.0f}%) by {worst.period_end:%Y-%m-%d}."
    )


def bot_cost(context: SkillContext, start: datetime, end: datetime) -> dict | None:
    """Spendbot's own LLM questions and their cost in [start, end), None when it made no calls."""
    rows = spend_by_model(context.engine, start, end)
    if not rows:
        return None
    return {
        "questions": sum(row.questions for row in rows),
        "cost_usd": round(sum(row.cost_usd or 0.0 for row in rows), 6),
    }


def bot_cost_line(cost: dict) -> str:
    """One line on what answering questions with the LLM cost in the period."""
    shown = format_small_money(cost["cost_usd"], "USD")
    return f"spendbot's own LLM use: {shown} for {cost['questions']:,} question(s)."
