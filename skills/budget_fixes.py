"""Fixes for a budget forecast to overrun: things in its scope to look at or stop, largest first.

Each fix finder looks at one kind of waste in a budget's scope and period: cost anomalies so far
this period, idle GPU machines now. Add a finder by appending it to FIX_FINDERS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine

from skills.anomalies import describe_alert
from skills.budgeting import BudgetStatus
from skills.detection import Alert, DetectorParams, detect
from skills.gpu_fleet import FleetError
from skills.gpu_scan import Finding, scan
from skills.money import format_money
from skills.registry import SkillContext
from storage.budgets import ALL, Budget
from storage.cost_series import TEAM_TAG, USAGE_CATEGORIES
from storage.costs import NONE_LABEL, OWNER, Filter, SpendQuery, run_spend


@dataclass(frozen=True)
class Fix:
    """Something that would bring a budget back under: what it is and the money at stake."""

    kind: str
    text: str
    amount: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"kind": self.kind, "text": self.text, "amount": round(self.amount, 2)}


log = logging.getLogger(__name__)


@dataclass
class FixContext:
    """What finders share in one evaluation: the skill's context and results worth reusing."""

    skill: SkillContext
    cache: dict[Hashable, Any] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        """The store."""
        return self.skill.engine

    @property
    def now(self) -> datetime:
        """The evaluation's clock."""
        return self.skill.now


FixFinder = Callable[[FixContext, BudgetStatus], list[Fix]]


def _alert_owner(context: FixContext, alert: Alert, currency: str) -> str | None:
    """The owner of at least half of an anomaly's series over its days, as spend by owner says.

    Owners come from the one owner resolution (overrides, owner tags, allocation rules, account
    defaults), so spend a rule assigns counts for that owner's budget, not only tagged spend.
    """
    episode = alert.episode
    key = ("owner", alert.level.name, episode.series, episode.start, episode.end, currency)
    if key not in context.cache:
        query = SpendQuery(
            datetime.combine(episode.start, time()),
            datetime.combine(episode.end + timedelta(days=1), time()),
            currency=currency,
            group_by=(OWNER,),
            filters=(
                Filter("charge_category", USAGE_CATEGORIES),  # what detection looks at
                *(
                    Filter(dimension, (value,))
                    for dimension, value in zip(alert.level.keys, episode.series, strict=True)
                    if value != NONE_LABEL
                ),
            ),
        )
        amounts = {
            row.key[0]: row.amount for row in run_spend(context.engine, query, context.skill.costs)
        }
        total = sum(amounts.values())
        owner = max(amounts, key=lambda name: amounts[name], default=None)
        context.cache[key] = owner if owner and amounts[owner] >= 0.5 * total > 0 else None
    return context.cache[key]


def _alert_in_scope(context: FixContext, budget: Budget, alert: Alert) -> bool:
    """Whether an anomaly's series lies inside the budget's scope (False when it cannot tell)."""
    if budget.scope == ALL:
        return True
    if budget.scope == OWNER:
        return _alert_owner(context, alert, budget.currency) == budget.scope_value
    value = {
        TEAM_TAG: alert.owner,
        "provider": alert.provider,
        "service": alert.service,
        "sub_account": alert.sub_account,
    }.get(budget.scope)
    return value is not None and value == budget.scope_value


def anomaly_fixes(context: FixContext, status: BudgetStatus) -> list[Fix]:
    """Cost spikes and new spend in the budget's scope so far this period."""
    until = min(status.period_end, context.now.date() - timedelta(days=1))
    if until < status.period_start:
        return []
    currency = status.budget.currency
    key = ("anomalies", status.period_start, until, currency)
    if key not in context.cache:
        # Budgets of one period share a detection run: it covers every scope at once.
        context.cache[key] = detect(
            context.skill.costs, status.period_start, until, DetectorParams(), currency
        )
    detection = context.cache[key]
    return [
        Fix("anomaly", describe_alert(alert, currency), alert.episode.impact)
        for alert in detection.alerts
        if alert.episode.impact > 0 and _alert_in_scope(context, status.budget, alert)
    ]


def _machine_in_scope(budget: Budget, finding: Finding) -> bool:
    """Whether a GPU machine belongs to the budget's scope (False when it cannot tell)."""
    machine = finding.machine
    if budget.scope == ALL:
        return True
    if budget.scope in (OWNER, TEAM_TAG):
        return finding.owner == budget.scope_value
    if budget.scope == "provider":
        return machine.provider == budget.scope_value
    if budget.scope.startswith("tag:"):
        return machine.tags.get(budget.scope.removeprefix("tag:")) == budget.scope_value
    return False


def idle_gpu_fixes(context: FixContext, status: BudgetStatus) -> list[Fix]:
    """Idle GPU machines in the budget's scope, priced to the end of the period."""
    if "idle_gpus" not in context.cache:
        try:
            found = [finding for finding in scan(context.skill) if finding.verdict.idle]
        except FleetError as error:
            log.warning("idle GPUs left out of budget fixes: %s", error)
            found = []
        context.cache["idle_gpus"] = found
    budget = status.budget
    period_end = datetime.combine(status.period_end + timedelta(days=1), time())
    hours_left = max((period_end - context.now).total_seconds() / 3600, 0.0)
    fixes = []
    for finding in context.cache["idle_gpus"]:
        if not _machine_in_scope(budget, finding):
            continue
        machine, price = finding.machine, finding.price
        hourly = price.amount if price and price.currency == budget.currency else None
        cost = (
            f"{format_money(hourly, budget.currency)} an hour, "
            f"{format_money(hourly * hours_left, budget.currency)} to the period's end"
            if hourly is not None
            else "hourly cost unknown"
        )
        since = finding.verdict.idle_since
        fixes.append(
            Fix(
                "idle_gpu",
                f"stop idle GPU machine {machine.id}"
                + (f" ({machine.type})" if machine.type else "")
                + (f", idle since {since:%Y-%m-%d %H:%M}" if since else "")
                + f": {cost}.",
                hourly * hours_left if hourly is not None else 0.0,
            )
        )
    return fixes


FIX_FINDERS: tuple[FixFinder, ...] = (anomaly_fixes, idle_gpu_fixes)


def find_fixes(
    context: FixContext, status: BudgetStatus, finders: tuple[FixFinder, ...] = FIX_FINDERS
) -> list[Fix]:
    """Every finder's fixes for a budget forecast to overrun, largest first; none when on track."""
    if status.state == "on track":
        return []
    found = [fix for finder in finders for fix in finder(context, status)]
    return sorted(found, key=lambda fix: -fix.amount)
