"""Budget skills: set a budget (a guarded write), and how spend stands against budgets."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from skills.budget_fixes import FixContext, find_fixes
from skills.budget_tree import build_tree, over_allocations, tree_lines, walk
from skills.budgeting import BudgetStatus, budget_status, burn_sentence, describe_drivers
from skills.errors import UserError
from skills.money import format_money
from skills.registry import SKILLS, ActionPlan, ApprovalPolicy, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import resolve_dimension, resolve_owner
from storage import budget_links
from storage import budgets as store
from storage.allocation import UNALLOCATED, owner_names
from storage.budgets import ALL, PERIODS
from storage.costs import DIMENSIONS, OWNER, TAG_PREFIX

FINOPS = "finops"
FIXES_SHOWN = 3
BUDGET_POLICY = ApprovalPolicy(required=False)
"""A finops holder (for every team, or the budget's own team) sets it at once; others are refused."""

_AMOUNT = re.compile(
    r"(?P<sign>[$€£])?\s*(?P<number>\d[\d,]*(?:\.\d+)?)\s*(?P<suffix>k|m|thousand|million)?\b",
    re.I,
)
_PERIOD_WORDS = {
    "monthly": "monthly",
    "per month": "monthly",
    "a month": "monthly",
    "quarterly": "quarterly",
    "per quarter": "quarterly",
    "a quarter": "quarterly",
    "annual": "annual",
    "annually": "annual",
    "yearly": "annual",
    "per year": "annual",
    "a year": "annual",
}
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}


class BudgetSetArgs(BaseModel):
    """Arguments of budget_set."""

    amount: float = Field(gt=0, description="The budget per period, in the billing currency.")
    period: str = Field("monthly", description="monthly, quarterly or annual.")
    scope: str = Field(
        OWNER,
        description="What it covers: owner (a team), provider, service, a tag key such as "
        "project, or * for all spend.",
    )
    value: str = Field("", description="The owner, provider, service or tag value; empty for *.")
    currency: str | None = Field(None, description="Default: the store's billing currency.")
    notify: str | None = Field(
        None,
        description="Where alerts go: slack:#channel, slack:U123, teams:<id>. Default: the "
        "owner's contact.",
    )

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        value = value.strip()
        if value == ALL or value.startswith(TAG_PREFIX):
            return value
        if value not in DIMENSIONS or value in ("day", "week", "month"):
            raise ValueError("scope is owner, provider, service, another dimension, tag:<key> or *")
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        value = _PERIOD_WORDS.get(value.strip().lower(), value.strip().lower())
        if value not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        return value


def _scope(text: str, context: SkillContext) -> tuple[str, str]:
    """The scope of 'for research', 'for aws', 'for project llm-pretrain', 'for sku gpt-4o'..."""
    words = text.strip().strip("'\"")
    if words.lower() in ("all", "everything", "all spend", "total", "the company", "the org"):
        return ALL, ""
    if match := re.match(r"^(?:the\s+)?([a-z][\w-]*)\s*[=:]\s*(\S+)$", words, re.I) or re.match(
        r"^(?:the\s+)?(provider|service|project|env|owner|team|sku|model)\s+(.+)$", words, re.I
    ):
        dimension = resolve_dimension(match[1], context)
        if dimension == TAG_PREFIX + "team":
            dimension = OWNER
        return dimension, _scope_value(dimension, match[2], context)
    words = re.sub(r"^(?:the\s+)?|\s+team$", "", words, flags=re.I)
    known = owner_names(context.engine, context.costs)
    owners = {name.lower(): name for name in known if name != UNALLOCATED}
    if words.lower() in owners:
        return OWNER, owners[words.lower()]
    for mention in context.vocabulary.find_mentions(words):
        if mention.dimension in ("provider", "service") or mention.dimension.startswith(TAG_PREFIX):
            return mention.dimension, mention.value
    raise UserError(
        f"I don't know who or what '{text}' is",
        "name a team (owner), a provider, a service, a sku (model) or tag=value, e.g. 'for research'",
    )


def _scope_value(dimension: str, value: str, context: SkillContext) -> str:
    if dimension == OWNER:
        return resolve_owner(value, context)
    return context.vocabulary.resolve(dimension, value)


def parse_budget_text(text: str, context: SkillContext) -> BudgetSetArgs:
    """'set a $20k monthly budget for research', 'budget 5000 per quarter for aws'."""
    amount = _AMOUNT.search(text)
    if not amount:
        raise UserError("How much?", "e.g. 'set a $20k monthly budget for research'")
    number = float(amount["number"].replace(",", ""))
    suffix = (amount["suffix"] or "").lower()
    number *= {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(suffix, 1)
    lowered = text.lower()
    period = next(
        (value for word, value in _PERIOD_WORDS.items() if re.search(rf"\b{word}\b", lowered)),
        "monthly",
    )
    notify = re.search(r"\b(?:notify|alert|tell|post to)\s+(\S+)", text, re.I)
    target = re.search(
        r"\bfor\s+(.+?)(?:\s+(?:and\s+)?(?:notify|alert|tell|post to)\b.*)?[.?!]?$", text, re.I
    )
    scope, value = _scope(target[1], context) if target else (ALL, "")
    return BudgetSetArgs(
        amount=number,
        period=period,
        scope=scope,
        value=value,
        currency=_SYMBOLS.get(amount["sign"] or ""),
        notify=notify[1] if notify else None,
    )


def _currency(context: SkillContext, args: BudgetSetArgs) -> str:
    return context.vocabulary.choose_currency(args.currency)[0]


def plan_budget(context: SkillContext, args: BudgetSetArgs) -> ActionPlan:
    """One budget, set or replaced."""
    currency = _currency(context, args)
    with context.engine.connect() as connection:
        previous = store.find(connection, args.scope, args.value, args.period)
    label = "all spend" if args.scope == ALL else f"{args.scope} {args.value}"
    was = f" (was {format_money(previous.amount, previous.currency)})" if previous else ""
    return ActionPlan(
        summary=f"Set a {args.period} budget of {format_money(args.amount, currency)} "
        f"for {label}{was}",
        targets=(
            {
                "id": f"{args.scope}:{args.value}:{args.period}",
                "amount": args.amount,
                "currency": currency,
                "previous": previous.amount if previous else None,
            },
        ),
        impact=f"alerts at 50/80/100% of actual and 100% of forecast, to "
        f"{args.notify or 'the owner'}",
        impact_amount=args.amount,
        currency=currency,
        team=args.value if args.scope == OWNER else None,
    )


@SKILLS.skill(
    name="budget_set",
    args=BudgetSetArgs,
    parse_text=parse_budget_text,
    command="budget",
    examples=(
        "set a $20k monthly budget for research",
        "set a quarterly budget of 150000 for aws",
        "budget $5,000 per month for service Amazon Bedrock notify slack:#finops",
    ),
    triggers=(
        r"\b(set|create|add|change|make)\b.{0,40}\bbudget\b.*",
        r"\bbudget\s+(?:of\s+)?[$€£]?\d.*",
    ),
    risk="write",
    permission=FINOPS,
    plan=plan_budget,
    policy=BUDGET_POLICY,
)
def budget_set(context: SkillContext, args: BudgetSetArgs) -> Reply:
    """Set (or change) a monthly, quarterly or annual budget for an owner, provider, service or tag.

    Alerts fire once per period at 50%, 80% and 100% of actual spend and when the forecast
    reaches 100%, to `notify` or else the owner's chat contact.
    """
    currency = _currency(context, args)
    with context.engine.begin() as connection:
        budget, previous = store.upsert(
            connection,
            scope=args.scope,
            scope_value=args.value,
            period=args.period,
            amount=args.amount,
            currency=currency,
            notify=args.notify,
            by=context.user,
            at=context.now,
        )
        context.audit(
            connection,
            event="budget_set",
            skill="budget_set",
            detail={
                "budget": budget.as_dict(),
                "previous": previous.as_dict() if previous else None,
            },
        )
    status = budget_status(
        context.engine, budget, context.now, with_drivers=False, costs=context.costs
    )
    return Reply(
        text=f"Budget set: {format_money(budget.amount, currency)} {budget.period} for "
        f"{budget.label}. So far this period {format_money(status.actual, currency)} "
        f"({status.used_pct:.0f}%); forecast {format_money(status.forecast, currency)} "
        f"({status.forecast_pct:.0f}%).",
        data={"budget": budget.as_dict(), "status": status.as_dict()},
    )


class BudgetStatusArgs(BaseModel):
    """Arguments of budget_status."""

    overrun_only: bool = Field(
        False, description="Only budgets forecast to overrun (or already over) this period."
    )


def parse_status_text(text: str, context: SkillContext) -> BudgetStatusArgs:
    """'how are we doing against budgets?', 'which teams will overrun this month?'."""
    return BudgetStatusArgs(
        overrun_only=bool(re.search(r"\b(overrun\w*|exceed\w*|over budget|go over)\b", text, re.I))
    )


def _row(status: BudgetStatus) -> list:
    return [
        status.budget.label,
        status.budget.period,
        round(status.budget.amount, 2),
        round(status.actual, 2),
        f"{status.used_pct:.0f}%",
        round(status.forecast, 2),
        f"{status.forecast_pct:.0f}%",
        status.state,
        f"{status.exhausted_on:%Y-%m-%d}" if status.exhausted_on else "",
    ]


@SKILLS.skill(
    name="budget_status",
    args=BudgetStatusArgs,
    parse_text=parse_status_text,
    command="budgets",
    examples=(
        "how are we doing against budgets?",
        "which teams will overrun this month?",
        "budget status",
    ),
    triggers=(
        r"\b(against|vs|versus)\s+(?:the\s+|our\s+)?budgets?\b.*",
        r"\bbudgets?\s+(status|report|check)\b.*",
        r"\b(overrun\w*|over budget|exceed\w* (?:the |their |its )?budgets?)\b.*",
    ),
)
def budget_status_skill(context: SkillContext, args: BudgetStatusArgs) -> Reply:
    """How spend stands against budgets: spent so far, forecast, who will overrun and when.

    Actual spend is to yesterday (complete days); the forecast adds the expected rest of the
    period (Holt-Winters, as forecast_show); the burn date is when actual plus forecast reaches
    the budget. Overruns name their drivers: services and resources up most against the same
    days of the previous period, and fixes in the budget's scope (cost anomalies to look at,
    idle GPU machines to stop).

    Nested budgets (org > team > project) show as a tree, each measured over its own scope,
    with a warning where children's budgets add up to more than their parent's.
    """
    with context.engine.connect() as connection:
        all_budgets = store.list_budgets(connection)
    if not all_budgets:
        return Reply(
            text="No budgets are set. Set one with 'set a $20k monthly budget for research'.",
            data={"budgets": []},
        )
    statuses = [
        budget_status(context.engine, budget, context.now, costs=context.costs)
        for budget in all_budgets
    ]
    statuses.sort(key=lambda status: -status.forecast_pct)
    fix_context = FixContext(context)
    fixes = {s.budget.id: find_fixes(fix_context, s) for s in statuses}
    shown = [s for s in statuses if s.state != "on track"] if args.overrun_only else statuses
    at_risk = [s for s in statuses if s.state != "on track"]
    if args.overrun_only and not shown:
        lines = [f"No budget is forecast to overrun: all {len(statuses)} are on track."]
    elif args.overrun_only:
        lines = [f"{len(shown)} of {len(statuses)} budgets are forecast to overrun:"]
    else:
        lines = [
            f"{len(statuses)} budget{'s' if len(statuses) != 1 else ''}: "
            f"{len(statuses) - len(at_risk)} on track, {len(at_risk)} forecast to overrun."
        ]
    for status in shown if args.overrun_only else at_risk:
        money = lambda amount, s=status: format_money(amount, s.budget.currency)  # noqa: E731
        line = (
            f"• {status.budget.label}: {money(status.forecast)} forecast against "
            f"{money(status.budget.amount)} ({money(status.overrun)} over). "
            + burn_sentence(status)
        )
        if status.drivers:
            line += f" Drivers: {describe_drivers(status)}."
        lines.append(line)
        lines += [f"    ◦ Fix: {fix.text}" for fix in fixes[status.budget.id][:FIXES_SHOWN]]
    with context.engine.connect() as connection:
        tree = build_tree(statuses, budget_links.parents(connection))
    warnings = [warning.describe() for warning in over_allocations(tree)]
    if tree:
        lines += ["Budget tree (each budget's spend is over its own scope):", *tree_lines(tree)]
        lines += warnings
    table = Table(
        [
            "Budget",
            "Period",
            "Budget amount",
            "Actual",
            "Used",
            "Forecast",
            "Of budget",
            "State",
            "Runs out",
        ],
        [_row(status) for status in shown],
        frozenset({2, 3, 5}),
        shown[0].budget.currency if shown else "USD",
    )
    return Reply(
        text="\n".join(lines),
        table=table if shown else None,
        context="Metric: EffectiveCost (amortized) · Actual: period start to yesterday "
        "(complete days) · Forecast: Holt-Winters, weekly seasonality",
        data={
            "budgets": [
                {
                    **status.as_dict(),
                    "fixes": [fix.as_dict() for fix in fixes[status.budget.id]],
                }
                for status in shown
            ],
            "tree": [
                {"id": node.status.budget.id, "label": node.status.budget.label, "depth": depth}
                for node, depth in walk(tree)
            ],
            "warnings": warnings,
        },
    )
