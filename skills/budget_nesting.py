"""Nesting budgets from chat: put one budget under another, or take it out (guarded writes)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Connection

from skills.budget_tree import build_tree, tree_lines
from skills.budgeting import budget_status
from skills.budgets import BUDGET_POLICY, FINOPS
from skills.errors import UserError
from skills.registry import SKILLS, ActionPlan, SkillContext
from skills.replies import Reply
from storage import budget_links
from storage import budgets as store
from storage.budgets import ALL, PERIODS, Budget, parse_parent
from storage.costs import OWNER

_PERIOD_WORDS = {
    "monthly": "monthly",
    "quarterly": "quarterly",
    "annual": "annual",
    "yearly": "annual",
}
_EVERYTHING = ("all", "all spend", "everything", "the company", "the org", "total", "*")
_LINK = (
    re.compile(
        r"\b(?:put|nest|move|place)\s+(?P<child>.+?)\s+(?:under(?:neath)?|below|beneath|inside|"
        r"within|into)\s+(?P<parent>.+?)[.?!]?$",
        re.I,
    ),
    re.compile(
        r"\bmake\s+(?P<child>.+?)\s+(?:a\s+)?(?:part|child)\s+of\s+(?P<parent>.+?)[.?!]?$", re.I
    ),
)
_UNLINK = (
    re.compile(
        r"\b(?:take|move|remove|pull)\s+(?P<child>.+?)\s+(?:out\s+(?:of|from)\s+(?:under\s+)?|"
        r"from\s+(?:under\s+)?).+$",
        re.I,
    ),
    re.compile(r"\b(?:unnest|unlink|detach)\s+(?P<child>.+?)(?:\s+from\s+.+)?[.?!]?$", re.I),
)


def _period(value: str | None) -> str | None:
    if value is None:
        return None
    value = _PERIOD_WORDS.get(value.strip().lower(), value.strip().lower())
    if value not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    return value


class _PeriodChoice(BaseModel):
    """The budget period, needed only when a name has budgets of several."""

    period: str | None = Field(
        None, description="monthly, quarterly or annual, when a name has budgets of several."
    )

    @field_validator("period")
    @classmethod
    def _known_period(cls, value: str | None) -> str | None:
        return _period(value)


class BudgetLinkArgs(_PeriodChoice):
    """Arguments of budget_link."""

    child: str = Field(
        description="The budget to nest: scope=value (owner=search, tag:project=x), a name "
        "(search), or * for all spend."
    )
    parent: str = Field(description="The budget to nest it under, written the same way.")


class BudgetUnlinkArgs(_PeriodChoice):
    """Arguments of budget_unlink."""

    child: str = Field(description="The nested budget: scope=value, a name, or *.")


def _reference(words: str) -> str:
    """'the search budget' -> 'search'; 'the monthly gpt-4o budget' -> 'gpt-4o'."""
    words = re.sub(r"^(?:the|our|its)\s+", "", words.strip().strip("'\""), flags=re.I)
    words = re.sub(rf"\b(?:{'|'.join(_PERIOD_WORDS)})\b\s*", "", words, flags=re.I)
    words = re.sub(r"(?:'s)?\s+(?:team\s+)?budgets?$|\s+team$", "", words.strip(), flags=re.I)
    return "*" if words.lower() in _EVERYTHING else words.strip()


def _text_period(text: str) -> str | None:
    found = {v for w, v in _PERIOD_WORDS.items() if re.search(rf"\b{w}\b", text, re.I)}
    return found.pop() if len(found) == 1 else None


def parse_link_text(text: str, context: SkillContext) -> BudgetLinkArgs:
    """'put the search budget under research', 'make the gpt-4o budget part of the search budget'."""
    for pattern in _LINK:
        if match := pattern.search(text):
            return BudgetLinkArgs(
                child=_reference(match["child"]),
                parent=_reference(match["parent"]),
                period=_text_period(text),
            )
    raise UserError("Which budget goes under which?", "e.g. 'put the search budget under research'")


def parse_unlink_text(text: str, context: SkillContext) -> BudgetUnlinkArgs:
    """'take the search budget out of research', 'unnest the gpt-4o budget'."""
    for pattern in _UNLINK:
        if match := pattern.search(text):
            return BudgetUnlinkArgs(child=_reference(match["child"]), period=_text_period(text))
    raise UserError("Which budget?", "e.g. 'take the search budget out of research'")


def _candidates(connection: Connection, reference: str, period: str | None) -> list[Budget]:
    """Budgets a reference names: scope=value or * exactly, else a value or label by name."""
    every = [b for b in store.list_budgets(connection) if period in (None, b.period)]
    if reference == ALL or "=" in reference:
        try:
            scope, value = parse_parent(reference)
        except ValueError as error:
            raise UserError(str(error), "e.g. owner=search, tag:project=x or *") from None
        return [b for b in every if (b.scope, b.scope_value.lower()) == (scope, value.lower())]
    wanted = reference.lower()
    return [b for b in every if wanted in (b.scope_value.lower(), b.label.lower())]


def _none_found(reference: str, period: str | None) -> UserError:
    return UserError(
        f"There is no {period + ' ' if period else ''}budget for '{reference}'",
        "'budget status' lists them; name one as scope=value, e.g. owner=search",
    )


def _absent(context: SkillContext, references: tuple[str, ...], period: str | None) -> str | None:
    """What is missing, as a plan's summary, when a reference names no budget; else None."""
    with context.engine.connect() as connection:
        missing = [r for r in references if not _candidates(connection, r, period)]
    if not missing:
        return None
    return (
        f"No {period + ' ' if period else ''}budget for "
        + " or ".join(f"'{r}'" for r in missing)
        + ": nothing to change. 'budget status' lists the budgets there are."
    )


def _one(connection: Connection, reference: str, period: str | None) -> Budget:
    found = _candidates(connection, reference, period)
    if not found:
        raise _none_found(reference, period)
    if len(found) > 1:
        raise UserError(
            f"'{reference}' names {len(found)} budgets: "
            + ", ".join(f"{b.label} ({b.period})" for b in found),
            "say which: a period (monthly, quarterly, annual) or scope=value",
        )
    return found[0]


def _pair(connection: Connection, args: BudgetLinkArgs) -> tuple[Budget, Budget]:
    """The child and parent budgets, preferring the one pair of the same period."""
    children = _candidates(connection, args.child, args.period)
    parents = _candidates(connection, args.parent, args.period)
    if not children:
        raise _none_found(args.child, args.period)
    if not parents:
        raise _none_found(args.parent, args.period)
    pairs = [(c, p) for c in children for p in parents if c.period == p.period and c.id != p.id]
    if len(pairs) == 1:
        return pairs[0]
    if not pairs and len(children) == len(parents) == 1:
        return children[0], parents[0]  # of different periods: storage says why not
    return _one(connection, args.child, args.period), _one(connection, args.parent, args.period)


def _checked_pair(context: SkillContext, args: BudgetLinkArgs) -> tuple[Budget, Budget]:
    """The pair, after a trial link that is rolled back: loops and mixed periods are refused."""
    with context.engine.connect() as connection:
        child, parent = _pair(connection, args)
        try:
            budget_links.link(connection, child, parent)
        except ValueError as error:
            raise UserError(str(error), "'budget status' shows the tree") from None
        finally:
            connection.rollback()
    return child, parent


def plan_link(context: SkillContext, args: BudgetLinkArgs) -> ActionPlan:
    """One budget put under another."""
    if missing := _absent(context, (args.child, args.parent), args.period):
        return ActionPlan(summary=missing, preview_only=True)
    child, parent = _checked_pair(context, args)
    with context.engine.connect() as connection:
        was = budget_links.parents(connection).get(child.id)
    return ActionPlan(
        summary=f"Nest the {child.period} budget for {child.label} under {parent.label}",
        targets=({"id": f"{child.id}>{parent.id}", "child": child.label, "parent": parent.label},),
        impact="replaces its current parent" if was is not None else "",
        team=parent.scope_value if parent.scope == OWNER else None,
    )


def _tree_text(context: SkillContext, root: Budget) -> list[str]:
    """The lines of the tree `root` heads (its own statuses only)."""
    with context.engine.connect() as connection:
        links = budget_links.parents(connection)
        every = {b.id: b for b in store.list_budgets(connection)}
    top = root.id
    while top in links:
        top = links[top]
    members = {top}
    while extra := {c for c, p in links.items() if p in members and c not in members}:
        members |= extra
    statuses = [
        budget_status(
            context.engine, every[i], context.now, with_drivers=False, costs=context.costs
        )
        for i in members
    ]
    return tree_lines(build_tree(statuses, links))


@SKILLS.skill(
    name="budget_link",
    args=BudgetLinkArgs,
    parse_text=parse_link_text,
    command="budget-nest",
    examples=(
        "put the search budget under research",
        "make the gpt-4o budget part of the search budget",
        "nest the monthly research budget under all spend",
    ),
    triggers=(
        r"\b(?:put|nest|move|place)\b.{0,60}\bbudgets?\b.{0,40}\b(?:under(?:neath)?|below|"
        r"beneath|inside|within|into)\b.*",
        r"\bbudgets?\b.{0,20}\b(?:part|child)\s+of\b.*",
        # Outscores budget_set's "make ... budget" for "make the X budget part of the Y budget".
        r"\bmake\b.{0,60}\bbudgets?\b.{0,20}\b(?:part|child)\s+of\b.*",
    ),
    risk="write",
    permission=FINOPS,
    plan=plan_link,
    policy=BUDGET_POLICY,
)
def budget_link(context: SkillContext, args: BudgetLinkArgs) -> Reply:
    """Nest one budget under another of the same period (org > team > project); refuses loops.

    A budget has one parent: nesting it again moves it. Each budget keeps measuring its own
    scope; budget_status shows the tree and warns where children promise more than the parent.
    """
    child, parent = _checked_pair(context, args)
    with context.engine.begin() as connection:
        was = budget_links.parents(connection).get(child.id)
        budget_links.link(connection, child, parent)
        context.audit(
            connection,
            event="budget_nested",
            skill="budget_link",
            detail={
                "child": child.as_dict(),
                "parent": parent.as_dict(),
                "previous_parent_id": was,
            },
        )
    return Reply(
        text="\n".join(
            [
                f"Nested {child.label} ({child.period}) under {parent.label}.",
                *_tree_text(context, parent),
            ]
        ),
        data={"child": child.as_dict(), "parent": parent.as_dict(), "previous_parent_id": was},
    )


def plan_unlink(context: SkillContext, args: BudgetUnlinkArgs) -> ActionPlan:
    """One budget taken out from under its parent."""
    if missing := _absent(context, (args.child,), args.period):
        return ActionPlan(summary=missing, preview_only=True)
    with context.engine.connect() as connection:
        child = _one(connection, args.child, args.period)
        parent = budget_links.parents(connection).get(child.id)
        labels = {b.id: b for b in store.list_budgets(connection)}
    if parent is None:
        return ActionPlan(
            summary=f"{child.label} ({child.period}) is not nested under another budget: "
            "nothing to change.",
            preview_only=True,
        )
    above = labels[parent]
    return ActionPlan(
        summary=f"Take the {child.period} budget for {child.label} out from under {above.label}",
        targets=({"id": str(child.id), "child": child.label, "parent": above.label},),
        team=above.scope_value if above.scope == OWNER else None,
    )


@SKILLS.skill(
    name="budget_unlink",
    args=BudgetUnlinkArgs,
    parse_text=parse_unlink_text,
    command="budget-unnest",
    examples=(
        "take the search budget out of research",
        "unnest the gpt-4o budget",
        "remove the search budget from under all spend",
    ),
    triggers=(
        r"\b(?:take|move|remove|pull)\b.{0,60}\bbudgets?\b.{0,20}\b(?:out\s+of|from)\b.*",
        r"\b(?:unnest|unlink|detach)\b.{0,60}\bbudgets?\b.*",
    ),
    risk="write",
    permission=FINOPS,
    plan=plan_unlink,
    policy=BUDGET_POLICY,
)
def budget_unlink(context: SkillContext, args: BudgetUnlinkArgs) -> Reply:
    """Take a nested budget out from under its parent; it becomes a top-level budget again."""
    with context.engine.begin() as connection:
        child = _one(connection, args.child, args.period)
        parent = budget_links.unlink(connection, child)
        if parent is None:
            raise UserError(f"{child.label} ({child.period}) is not nested under another budget")
        context.audit(
            connection,
            event="budget_nested",
            skill="budget_unlink",
            detail={"child": child.as_dict(), "previous_parent_id": parent},
        )
    return Reply(
        text=f"{child.label} ({child.period}) is no longer nested under another budget.",
        data={"child": child.as_dict(), "previous_parent_id": parent},
    )
