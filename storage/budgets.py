"""Budgets and the thresholds they fired: stored limits, once-per-threshold alert records, CSV import."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from storage.database import insert_once
from storage.models import budget_alerts, budgets

PERIODS = ("monthly", "quarterly", "annual")
PERIOD_UNITS = {"monthly": "month", "quarterly": "quarter", "annual": "year"}
ALL = "*"
"""The scope of a budget over all spend."""

DEFAULT_THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("actual", 50),
    ("actual", 80),
    ("actual", 100),
    ("forecast", 100),
)
"""Percentages of the budget: of actual spend so far, and of the forecast for the period."""


@dataclass(frozen=True)
class Budget:
    """One budget as stored."""

    id: int
    scope: str
    scope_value: str
    period: str
    amount: float
    currency: str
    thresholds: tuple[tuple[str, int], ...]
    notify: str | None
    updated_by: str
    updated_at: datetime

    @property
    def label(self) -> str:
        """What the budget covers, e.g. ``owner research`` or ``all spend``."""
        if self.scope == ALL:
            return "all spend"
        return f"{self.scope.replace('tag:', 'tag ')} {self.scope_value}"

    def as_dict(self) -> dict[str, Any]:
        """The budget as JSON-ready values."""
        return {
            "id": self.id,
            "scope": self.scope,
            "scope_value": self.scope_value,
            "label": self.label,
            "period": self.period,
            "amount": self.amount,
            "currency": self.currency,
            "thresholds": [{"kind": kind, "percent": pct} for kind, pct in self.thresholds],
            "notify": self.notify,
        }


def _budget(row: Any) -> Budget:
    thresholds = tuple(
        (item["kind"], int(item["percent"])) for item in json.loads(row.thresholds_json)
    )
    return Budget(
        row.id,
        row.scope,
        row.scope_value,
        row.period,
        float(row.amount),
        row.currency,
        thresholds,
        row.notify,
        row.updated_by,
        row.updated_at,
    )


def list_budgets(connection: Connection) -> list[Budget]:
    """Every budget, by scope, value and period."""
    statement = select(budgets).order_by(budgets.c.scope, budgets.c.scope_value, budgets.c.period)
    return [_budget(row) for row in connection.execute(statement)]


def find(connection: Connection, scope: str, scope_value: str, period: str) -> Budget | None:
    """The budget for this scope and period, or None."""
    row = connection.execute(
        select(budgets).where(
            budgets.c.scope == scope,
            budgets.c.scope_value == scope_value,
            budgets.c.period == period,
        )
    ).first()
    return _budget(row) if row else None


def upsert(
    connection: Connection,
    *,
    scope: str,
    scope_value: str,
    period: str,
    amount: float,
    currency: str,
    by: str,
    at: datetime,
    notify: str | None = None,
    thresholds: tuple[tuple[str, int], ...] = DEFAULT_THRESHOLDS,
) -> tuple[Budget, Budget | None]:
    """Set a budget, replacing the one for the same scope and period: (new, previous or None)."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    if amount <= 0:
        raise ValueError("a budget amount must be positive")
    values = {
        "amount": amount,
        "currency": currency,
        "notify": notify,
        "thresholds_json": json.dumps([{"kind": k, "percent": p} for k, p in thresholds]),
        "updated_by": by,
        "updated_at": at,
    }
    previous = find(connection, scope, scope_value, period)
    if previous is None:
        connection.execute(
            insert(budgets).values(scope=scope, scope_value=scope_value, period=period, **values)
        )
    else:
        connection.execute(update(budgets).where(budgets.c.id == previous.id).values(**values))
    current = find(connection, scope, scope_value, period)
    assert current is not None
    return current, previous


def record_alert(
    engine: Engine,
    *,
    budget_id: int,
    period_start: datetime,
    kind: str,
    percent: int,
    amount: float,
    message: str,
    at: datetime,
) -> bool:
    """Record that a threshold fired for a period; False when it had fired already.

    The unique constraint decides, in its own transaction, so two evaluations at once (two
    replicas, a rerun) fire a threshold exactly once.
    """
    return insert_once(
        engine,
        budget_alerts,
        budget_id=budget_id,
        period_start=period_start,
        kind=kind,
        percent=percent,
        fired_at=at,
        amount=amount,
        message=message,
    )


def fired(engine: Engine, budget_id: int, period_start: datetime) -> set[tuple[str, int]]:
    """Thresholds (kind, percent) already fired for a budget's period."""
    statement = select(budget_alerts.c.kind, budget_alerts.c.percent).where(
        budget_alerts.c.budget_id == budget_id, budget_alerts.c.period_start == period_start
    )
    with engine.connect() as connection:
        return {(kind, int(percent)) for kind, percent in connection.execute(statement)}


@dataclass(frozen=True)
class BudgetRow:
    """One budget read from CSV, before it is stored."""

    scope: str
    scope_value: str
    period: str
    amount: float
    currency: str
    notify: str | None
    parent: tuple[str, str] | None = None


CSV_COLUMNS = ("scope", "value", "period", "amount", "currency", "notify", "parent")


def parse_parent(text: str) -> tuple[str, str]:
    """A parent budget's scope as written in CSV: ``owner=research``, ``tag:team=ml``, ``*``."""
    text = text.strip()
    if text in (ALL, "all"):
        return ALL, ""
    scope, sep, value = text.partition("=")
    if not sep or not scope.strip() or not value.strip():
        raise ValueError(f"parent {text!r} is not scope=value (e.g. owner=research) or *")
    return scope.strip().lower(), value.strip()


def parse_csv(text: str, default_currency: str = "USD") -> list[BudgetRow]:
    """Budgets from CSV with a header ``scope,value,period,amount[,currency][,notify][,parent]``.

    `scope` is owner, provider, service, tag:<key> or ``*`` (all spend, empty value); amounts may
    carry a currency sign and thousands separators; `parent` nests the budget under another of
    the same period (``owner=research``, ``*``). Raises ValueError naming the bad line.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = {"scope", "period", "amount"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"CSV header lacks {', '.join(sorted(missing))}")
    found: list[BudgetRow] = []
    for line, record in enumerate(reader, start=2):
        scope = (record.get("scope") or "").strip().lower() or ALL
        value = (record.get("value") or "").strip()
        period = (record.get("period") or "").strip().lower()
        period = {
            "month": "monthly",
            "quarter": "quarterly",
            "year": "annual",
            "yearly": "annual",
        }.get(period, period)
        raw = (record.get("amount") or "").strip().replace(",", "").lstrip("$€£")
        try:
            amount = float(raw)
        except ValueError:
            raise ValueError(
                f"line {line}: amount {record.get('amount')!r} is not a number"
            ) from None
        if period not in PERIODS:
            raise ValueError(f"line {line}: period must be one of {', '.join(PERIODS)}")
        if amount <= 0:
            raise ValueError(f"line {line}: amount must be positive")
        if scope != ALL and not value:
            raise ValueError(f"line {line}: scope {scope} needs a value")
        try:
            parent = (
                parse_parent(record["parent"]) if (record.get("parent") or "").strip() else None
            )
        except ValueError as error:
            raise ValueError(f"line {line}: {error}") from None
        found.append(
            BudgetRow(
                scope,
                value if scope != ALL else "",
                period,
                amount,
                ((record.get("currency") or "").strip().upper() or default_currency),
                (record.get("notify") or "").strip() or None,
                parent,
            )
        )
    return found
