"""Nested budgets as a tree: each budget's own spend, and children that promise more than the parent.

A parent's actual spend is measured over its own scope (the union of what it covers), never as
the sum of its children: children can overlap (a project and a service of one team) or leave
spend uncovered, so their sum is no measure of the parent.
"""

from __future__ import annotations

from dataclasses import dataclass

from skills.budgeting import BudgetStatus
from skills.money import format_money


@dataclass(frozen=True)
class BudgetNode:
    """A budget's status with the budgets nested under it."""

    status: BudgetStatus
    children: tuple[BudgetNode, ...] = ()


def build_tree(statuses: list[BudgetStatus], parents: dict[int, int]) -> list[BudgetNode]:
    """The budgets that take part in nesting, as trees from their roots, largest first."""
    by_id = {status.budget.id: status for status in statuses}
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if child in by_id and parent in by_id:
            children.setdefault(parent, []).append(child)

    def node(budget_id: int) -> BudgetNode:
        kids = sorted(children.get(budget_id, []), key=lambda i: -by_id[i].budget.amount)
        return BudgetNode(by_id[budget_id], tuple(node(kid) for kid in kids))

    roots = [budget_id for budget_id in children if parents.get(budget_id) not in by_id]
    return [node(root) for root in sorted(roots, key=lambda i: -by_id[i].budget.amount)]


def walk(nodes: list[BudgetNode] | tuple[BudgetNode, ...], depth: int = 0):
    """Every node with its depth, parents before their children."""
    for item in nodes:
        yield item, depth
        yield from walk(item.children, depth + 1)


def tree_lines(nodes: list[BudgetNode]) -> list[str]:
    """One indented line per budget: spend so far and forecast against the amount."""
    lines = []
    for item, depth in walk(nodes):
        status = item.status
        money = lambda amount, s=status: format_money(amount, s.budget.currency)  # noqa: E731
        lines.append(
            f"{'    ' * depth}{'•' if depth == 0 else '◦'} {status.budget.label}: "
            f"{money(status.actual)} spent, {money(status.forecast)} forecast of "
            f"{money(status.budget.amount)} ({status.state})"
        )
    return lines


@dataclass(frozen=True)
class OverAllocation:
    """Children whose budgets add up to more than their parent's."""

    parent: BudgetStatus
    children_total: float

    def describe(self) -> str:
        """The warning in words."""
        budget = self.parent.budget
        return (
            f"Warning: the budgets under {budget.label} add up to "
            f"{format_money(self.children_total, budget.currency)}, above its own "
            f"{format_money(budget.amount, budget.currency)}."
        )


def over_allocations(nodes: list[BudgetNode]) -> list[OverAllocation]:
    """Parents whose children's budgets (in the parent's currency) sum above the parent's."""
    found = []
    for item, _ in walk(nodes):
        currency = item.status.budget.currency
        total = sum(
            child.status.budget.amount
            for child in item.children
            if child.status.budget.currency == currency
        )
        if item.children and total > item.status.budget.amount + 0.005:
            found.append(OverAllocation(item.status, total))
    return found
