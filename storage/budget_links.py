"""Nested budgets: which budget sits under which (org > team > project), without cycles."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from storage import budgets as store
from storage.budgets import ALL, Budget
from storage.models import budget_links


def parents(connection: Connection) -> dict[int, int]:
    """Each nested budget's id mapped to its parent's id."""
    rows = connection.execute(
        select(budget_links.c.child_budget_id, budget_links.c.parent_budget_id)
    )
    return {child: parent for child, parent in rows}


def link(connection: Connection, child: Budget, parent: Budget) -> None:
    """Put `child` under `parent` (replacing any parent it had); refuses cycles and mixed periods."""
    if child.period != parent.period:
        raise ValueError(
            f"{child.label} is {child.period} and {parent.label} {parent.period}: a budget nests "
            "only under one of the same period"
        )
    known = parents(connection)
    ancestor: int | None = parent.id
    while ancestor is not None:
        if ancestor == child.id:
            raise ValueError(f"{parent.label} is already under {child.label}: that would be a loop")
        ancestor = known.get(ancestor)
    connection.execute(delete(budget_links).where(budget_links.c.child_budget_id == child.id))
    connection.execute(
        insert(budget_links).values(child_budget_id=child.id, parent_budget_id=parent.id)
    )


def unlink(connection: Connection, child: Budget) -> int | None:
    """Take `child` out from under its parent; the parent's id, or None when it had none."""
    parent = parents(connection).get(child.id)
    connection.execute(delete(budget_links).where(budget_links.c.child_budget_id == child.id))
    return parent


def link_to_scope(
    connection: Connection, child: Budget, parent_scope: str, parent_value: str
) -> None:
    """Put `child` under the budget of the same period for `parent_scope` and `parent_value`."""
    parent = store.find(connection, parent_scope, parent_value, child.period)
    if parent is None:
        label = "*" if parent_scope == ALL else f"{parent_scope}={parent_value}"
        raise ValueError(f"no {child.period} budget for {label} to nest {child.label} under")
    link(connection, child, parent)
