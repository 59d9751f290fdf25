"""Budget status and alert evaluation: spend so far, the period-end forecast, burn date, drivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from skills.forecasting import forecast_daily, run_rate
from skills.money import format_money
from skills.periods import full_period, parse_period
from storage import budgets as store
from storage.allocation import resolve_recipient
from storage.budgets import ALL, PERIOD_UNITS, Budget
from storage.costs import OWNER, Filter, SpendQuery, run_spend

HISTORY_DAYS = 120
DRIVERS = 2


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def budget_filters(budget: Budget) -> tuple[Filter, ...]:
    """The spend a budget covers, as spend filters."""
    return () if budget.scope == ALL else (Filter(budget.scope, (budget.scope_value,)),)


def budget_period(budget: Budget, today: date) -> tuple[date, date]:
    """First and last day of the budget's calendar period containing `today`."""
    return full_period(parse_period(f"this {PERIOD_UNITS[budget.period]}", today))


def daily_spend(
    engine: Engine,
    filters: tuple[Filter, ...],
    currency: str,
    start: date,
    end: date,
    costs: Engine | None = None,
) -> pd.Series:
    """EffectiveCost per day from `start` to `end` inclusive, zero-filled.

    `costs` is where the line items are when not in the store `engine` (storage.engines).
    """
    query = SpendQuery(
        _midnight(start),
        _midnight(end + timedelta(days=1)),
        currency=currency,
        group_by=("day",),
        filters=filters,
    )
    amounts = {row.key[0]: row.amount for row in run_spend(engine, query, costs)}
    days = pd.date_range(start, end, freq="D")
    return pd.Series([amounts.get(f"{day:%Y-%m-%d}", 0.0) for day in days], index=days.date)


@dataclass(frozen=True)
class Driver:
    """A service or resource whose spend changed most against the previous period."""

    dimension: str
    name: str
    change: float
    amount: float


@dataclass(frozen=True)
class BudgetStatus:
    """Where a budget stands today."""

    budget: Budget
    period_start: date
    period_end: date
    actual: float
    forecast: float
    low: float
    high: float
    run_rate_forecast: float
    exhausted_on: date | None
    method: str
    as_of: date
    drivers: tuple[Driver, ...] = field(default=())

    @property
    def used_pct(self) -> float:
        """Actual spend as a percentage of the budget."""
        return self.actual / self.budget.amount * 100

    @property
    def forecast_pct(self) -> float:
        """The forecast as a percentage of the budget."""
        return self.forecast / self.budget.amount * 100

    @property
    def overrun(self) -> float:
        """How far the forecast exceeds the budget (0 when it does not)."""
        return max(0.0, self.forecast - self.budget.amount)

    @property
    def state(self) -> str:
        """over, at risk (forecast over), or on track."""
        if self.actual >= self.budget.amount:
            return "over"
        return "at risk" if self.forecast > self.budget.amount else "on track"

    def crossed(self) -> list[tuple[str, int]]:
        """The thresholds reached now."""
        values = {"actual": self.actual, "forecast": self.forecast}
        return [
            (kind, percent)
            for kind, percent in self.budget.thresholds
            if values[kind] >= self.budget.amount * percent / 100
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "budget": self.budget.as_dict(),
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "as_of": self.as_of.isoformat(),
            "actual": round(self.actual, 6),
            "used_pct": round(self.used_pct, 2),
            "forecast": round(self.forecast, 6),
            "forecast_low": round(self.low, 6),
            "forecast_high": round(self.high, 6),
            "forecast_pct": round(self.forecast_pct, 2),
            "run_rate_forecast": round(self.run_rate_forecast, 6),
            "overrun": round(self.overrun, 6),
            "state": self.state,
            "exhausted_on": self.exhausted_on.isoformat() if self.exhausted_on else None,
            "method": self.method,
            "drivers": [
                {
                    "dimension": d.dimension,
                    "name": d.name,
                    "change": round(d.change, 6),
                    "amount": round(d.amount, 6),
                }
                for d in self.drivers
            ],
        }


def budget_status(
    engine: Engine,
    budget: Budget,
    now: datetime,
    *,
    with_drivers: bool = True,
    costs: Engine | None = None,
) -> BudgetStatus:
    """Actual spend to yesterday, the forecast to the period's end, when it runs out, and why.

    Complete days only: today's spend is still arriving, so it is forecast, as forecast_show does.
    The allocation rules come from the store `engine`; `costs` is where the line items are when
    not in the store (storage.engines).
    """
    today = now.date()
    start, end = budget_period(budget, today)
    filters = budget_filters(budget)
    yesterday = today - timedelta(days=1)
    history = daily_spend(
        engine, filters, budget.currency, today - timedelta(days=HISTORY_DAYS), yesterday, costs
    )
    history = history[history.cumsum() > 0] if history.any() else history.iloc[0:0]
    in_period = history[history.index >= start]
    actual = float(in_period.sum())
    horizon = (end - today).days + 1
    forecast = forecast_daily(history, horizon)
    naive = actual + float(run_rate(history, horizon).sum())
    exhausted = _exhausted_on(in_period, forecast.expected, today, budget.amount)
    drivers = _drivers(engine, budget, filters, start, today, costs) if with_drivers else ()
    return BudgetStatus(
        budget,
        start,
        end,
        actual,
        actual + forecast.total,
        actual + forecast.total_low,
        actual + forecast.total_high,
        naive,
        exhausted,
        forecast.method,
        today,
        drivers,
    )


def _exhausted_on(
    in_period: pd.Series, expected: np.ndarray, today: date, amount: float
) -> date | None:
    """The first day cumulative spend (actual, then forecast) reaches `amount`, or None."""
    spent = np.cumsum(in_period.to_numpy(dtype=float))
    reached = np.nonzero(spent >= amount)[0]
    if len(reached):
        return in_period.index[int(reached[0])]
    ahead = (spent[-1] if len(spent) else 0.0) + np.cumsum(expected)
    reached = np.nonzero(ahead >= amount)[0]
    return today + timedelta(days=int(reached[0])) if len(reached) else None


def _drivers(
    engine: Engine,
    budget: Budget,
    filters: tuple[Filter, ...],
    start: date,
    today: date,
    costs: Engine | None,
) -> tuple[Driver, ...]:
    """Services and resources up most against the same days of the previous period."""
    elapsed = (today - start).days
    if elapsed <= 0:
        return ()
    previous_start = full_period(
        parse_period(f"this {PERIOD_UNITS[budget.period]}", start - timedelta(days=1))
    )[0]
    found: list[Driver] = []
    for dimension in ("service", "resource"):

        def amounts(first: date, dimension: str = dimension) -> dict[str, float]:
            query = SpendQuery(
                _midnight(first),
                _midnight(first + timedelta(days=elapsed)),
                currency=budget.currency,
                group_by=(dimension,),
                filters=filters,
            )
            return {row.key[0]: row.amount for row in run_spend(engine, query, costs)}

        now, before = amounts(start), amounts(previous_start)
        changes = sorted(
            (
                Driver(
                    dimension, name, now.get(name, 0.0) - before.get(name, 0.0), now.get(name, 0.0)
                )
                for name in {*now, *before}
                if name != "(none)"
            ),
            key=lambda driver: -driver.change,
        )
        found += [driver for driver in changes[:DRIVERS] if driver.change > 0.005]
    return tuple(found)


def describe_drivers(status: BudgetStatus) -> str:
    """The drivers in words, e.g. ``Amazon EC2 +$3,200.00, i-0abc +$2,100.00``."""
    return ", ".join(
        f"{d.dimension} {_short(d.name)} +{format_money(d.change, status.budget.currency)}"
        for d in status.drivers
    )


def _short(name: str) -> str:
    """The last part of a long resource path (an Azure or GCP resource id)."""
    return name.rstrip("/").rsplit("/", 1)[-1] if "/" in name else name


def burn_sentence(status: BudgetStatus) -> str:
    """'At this rate research exhausts its budget on 2026-11-23.' or that it stays under."""
    money = lambda amount: format_money(amount, status.budget.currency)  # noqa: E731
    who = status.budget.scope_value or "spend"
    if status.exhausted_on is None:
        return (
            f"At this rate {who} stays under its budget: {money(status.forecast)} forecast of "
            f"{money(status.budget.amount)}."
        )
    verb = "exhausted" if status.exhausted_on < status.as_of else "exhausts"
    return f"At this rate {who} {verb} its budget on {status.exhausted_on:%Y-%m-%d}."


def alert_message(status: BudgetStatus, kind: str, percent: int) -> str:
    """The text of one threshold alert, with the drivers of the change."""
    budget = status.budget
    money = lambda amount: format_money(amount, budget.currency)  # noqa: E731
    period = f"{status.period_start:%Y-%m-%d} to {status.period_end:%Y-%m-%d}"
    if kind == "actual":
        head = (
            f"Budget alert: {budget.label} has spent {money(status.actual)}, "
            f"{status.used_pct:.0f}% of its {budget.period} budget of {money(budget.amount)} "
            f"({period}; threshold {percent}%)."
        )
    else:
        head = (
            f"Budget alert: {budget.label} is forecast to spend {money(status.forecast)} "
            f"({status.forecast_pct:.0f}% of its {budget.period} budget of {money(budget.amount)}, "
            f"{period}; threshold {percent}% of forecast)."
        )
    lines = [head, burn_sentence(status)]
    if status.drivers:
        lines.append(f"Drivers vs the same days last period: {describe_drivers(status)}.")
    return " ".join(lines)


@dataclass(frozen=True)
class FiredAlert:
    """A threshold that fired in this evaluation, with who should hear about it.

    When several thresholds of one kind are crossed at once (50% and 80% of actual), one alert
    names the highest and `also` the lower ones, which are recorded as fired too.
    """

    budget: Budget
    period_start: date
    kind: str
    percent: int
    message: str
    notify: str | None
    status: BudgetStatus
    also: tuple[int, ...] = ()


def evaluate_budgets(
    engine: Engine, now: datetime, *, fallback: str | None = None, costs: Engine | None = None
) -> list[FiredAlert]:
    """Evaluate every budget now; return the thresholds that fired for the first time.

    A threshold fires once per budget period however often this runs: each firing is a row
    under a unique constraint (storage.budgets.record_alert). The notification target is the
    budget's own, else its owner's contact (storage.allocation.resolve_recipient), else
    `fallback`. `costs` is where the line items are when not in the store (storage.engines).
    """
    with engine.connect() as connection:
        all_budgets = store.list_budgets(connection)
    alerts: list[FiredAlert] = []
    for budget in all_budgets:
        status = budget_status(engine, budget, now, with_drivers=False, costs=costs)
        period_start = _midnight(status.period_start)
        done = store.fired(engine, budget.id, period_start)
        new = [threshold for threshold in status.crossed() if threshold not in done]
        if not new:
            continue
        status = budget_status(engine, budget, now, costs=costs)
        target = (
            budget.notify
            or resolve_recipient(
                engine,
                owner=budget.scope_value if budget.scope == OWNER else None,
                fallback=fallback,
            ).contact
        )
        for kind in ("actual", "forecast"):
            won = [
                percent
                for threshold_kind, percent in sorted(new)
                if threshold_kind == kind
                and store.record_alert(
                    engine,
                    budget_id=budget.id,
                    period_start=period_start,
                    kind=kind,
                    percent=percent,
                    amount=status.actual if kind == "actual" else status.forecast,
                    message=alert_message(status, kind, percent),
                    at=now,
                )
            ]
            if won:
                alerts.append(
                    FiredAlert(
                        budget,
                        status.period_start,
                        kind,
                        won[-1],
                        alert_message(status, kind, won[-1]),
                        target,
                        status,
                        tuple(won[:-1]),
                    )
                )
    return alerts
