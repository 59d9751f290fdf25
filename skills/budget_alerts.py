"""Budget alerts as posted: each new threshold with the overrun's drivers, fixes and recipient."""

from __future__ import annotations

from dataclasses import dataclass

from skills.budget_fixes import FixContext, find_fixes
from skills.budgeting import FiredAlert, evaluate_budgets
from skills.budgets import FIXES_SHOWN
from skills.registry import SkillContext
from skills.replies import Reply


@dataclass(frozen=True)
class BudgetNotice:
    """One alert to post: where it goes (None: nowhere known) and the reply to post."""

    alert: FiredAlert
    target: str | None
    reply: Reply


def budget_notices(context: SkillContext, fallback: str | None = None) -> list[BudgetNotice]:
    """Thresholds crossed for the first time this period, each as a reply for its recipient.

    The text names the drivers (services and resources up most against the same days of the
    previous period) and, for a budget forecast to overrun, the largest fixes in its scope
    (skills.budget_fixes.FIX_FINDERS). The recipient is the budget's own target, else its
    owner's chat identity, else `fallback`.
    """
    fixes_context = FixContext(context)
    notices = []
    for alert in evaluate_budgets(
        context.engine, context.now, fallback=fallback, costs=context.costs
    ):
        fixes = find_fixes(fixes_context, alert.status)[:FIXES_SHOWN]
        text = "\n".join([alert.message, *(f"• Fix: {fix.text}" for fix in fixes)])
        reply = Reply(
            text=text,
            data={
                "budget": alert.budget.as_dict(),
                "status": alert.status.as_dict(),
                "threshold": {"kind": alert.kind, "percent": alert.percent},
                "fixes": [fix.as_dict() for fix in fixes],
            },
        )
        notices.append(BudgetNotice(alert, alert.notify, reply))
    return notices
