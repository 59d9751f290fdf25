"""The forecast skill: where a month, quarter or year will end up, with an uncertainty band."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from skills.errors import UserError
from skills.forecasting import forecast_daily, run_rate
from skills.money import format_money
from skills.periods import full_period, parse_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import describe_filters, resolve_filters
from skills.spend_phrases import parse_spend_text
from storage.costs import Filter, SpendQuery, run_spend
from storage.focus import METRIC_LABELS

HISTORY_DAYS = 120
MAX_HISTORY_DAYS = 400
"""Long horizons fit on up to twice their length of history, so a year sees more than 4 months."""
NEXT_PERIOD_WORDS = {"next month": "month", "next quarter": "quarter", "next year": "year"}
PERIOD_END_WORDS = re.compile(
    r"\b(?:(?P<unit>month|quarter|year)[- ]end|end of (?:the |this )?(?P<unit2>month|quarter|year))"
    r"\b",
    re.I,
)
"""'quarter-end forecast', 'where will we be at the end of the year': the current unit."""
WEEKLY_TABLE_DAYS = 100


class ForecastArgs(BaseModel):
    """Arguments of forecast_show."""

    period: str = Field(
        "this month",
        description="The month, quarter or year to forecast: 'this month', 'next month', "
        "'this quarter', 'next quarter', 'this year', 'next year', 'November 2026'. The whole "
        "calendar unit is forecast: actual spend to yesterday plus expected spend for the rest.",
    )
    metric: Literal["effective", "billed", "list", "contracted"] = "effective"
    filters: dict[str, list[str]] = Field(
        default_factory=dict, description="Keep only these values, as in spend_query."
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict, description="Drop these values, as in spend_query."
    )
    gpu_only: bool = False


def parse_forecast_text(text: str, context: SkillContext) -> ForecastArgs:
    """Forecast arguments from a message: the period, metric and filters as for spend."""
    lowered = text.lower()
    period = next((words for words in NEXT_PERIOD_WORDS if words in lowered), None)
    if period is None and (end := PERIOD_END_WORDS.search(text)):
        text = text[: end.start()] + " " + text[end.end() :]
        period = f"this {(end['unit'] or end['unit2']).lower()}"
    spend = parse_spend_text(text.replace(period, " ") if period else text, context)
    chosen = period or (spend.period if "period" in spend.model_fields_set else "this month")
    return ForecastArgs(
        period=chosen,
        metric=spend.metric,
        filters=spend.filters,
        exclude=spend.exclude,
        gpu_only=spend.gpu_only,
    )


def _target(period_text: str, today: date) -> tuple[date, date, str]:
    """First and last day of the calendar period to forecast, and its name."""
    unit = NEXT_PERIOD_WORDS.get(period_text.strip().lower())
    if unit:
        current = full_period(parse_period(f"this {unit}", today))
        start = current[1] + timedelta(days=1)
        end = full_period(parse_period(f"this {unit}", start))[1]
        return start, end, f"{period_text.strip()} ({start:%Y-%m-%d} to {end:%Y-%m-%d})"
    period = parse_period(period_text, today)
    start, end = full_period(period)
    names = {
        "month": f"{start:%B %Y}",
        "quarter": f"Q{(start.month - 1) // 3 + 1} {start.year}",
        "year": str(start.year),
    }
    return start, end, names.get(period.unit, f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")


def _daily(
    context: SkillContext,
    args: ForecastArgs,
    filters: tuple[Filter, ...],
    currency: str,
    start: date,
    end: date,
) -> pd.Series:
    """Daily amounts from `start` to `end` inclusive, zero-filled."""
    query = SpendQuery(
        start=pd.Timestamp(start).to_pydatetime(),
        end=pd.Timestamp(end + timedelta(days=1)).to_pydatetime(),
        metric=args.metric,
        currency=currency,
        group_by=("day",),
        filters=filters,
        gpu_only=args.gpu_only,
    )
    amounts = {row.key[0]: row.amount for row in run_spend(context.engine, query, context.costs)}
    days = pd.date_range(start, end, freq="D")
    return pd.Series([amounts.get(day.strftime("%Y-%m-%d"), 0.0) for day in days], index=days.date)


@SKILLS.skill(
    name="forecast_show",
    args=ForecastArgs,
    parse_text=parse_forecast_text,
    command="forecast",
    examples=(
        "forecast this month",
        "what will the search team spend this month?",
        "forecast next month for gpu spend",
        "month-end forecast for aws",
        "projected spend this quarter",
        "quarter-end forecast for research",
        "year-end forecast",
    ),
    triggers=(
        r"\b(forecasts?|projected|projection|predict\w*|month[- ]end|quarter[- ]end|year[- ]end|end up|on track)\b.*",
        r"\bwill\b.{0,40}\b(spend|cost|be)\b.*",
    ),
)
def forecast_show(context: SkillContext, args: ForecastArgs) -> Reply:
    """Forecast where spend for a month, quarter or year will end up, with an 80% range.

    Adds the actual spend from the period's start to yesterday and the expected spend for the
    remaining days, from a Holt-Winters model (damped trend, weekly seasonality) fitted on up to
    120 days of daily history; says so when history is too short for a seasonal forecast.
    """
    today = context.now.date()
    start, end, label = _target(args.period, today)
    if end < today:
        raise UserError(f"{label} is over: nothing left to forecast", "ask for its spend instead")
    currency, _ = context.vocabulary.choose_currency(None)
    filters = resolve_filters(args.filters, args.exclude, context)
    yesterday = today - timedelta(days=1)
    ahead = (end - today).days + 1
    history = _daily(
        context,
        args,
        filters,
        currency,
        # From the period's start at the latest: its actual spend so far comes from here too.
        min(start, today - timedelta(days=min(max(HISTORY_DAYS, 2 * ahead), MAX_HISTORY_DAYS))),
        yesterday,
    )
    history = history[history.cumsum() > 0] if history.any() else history.iloc[0:0]
    actual = float(history[history.index >= start].sum())
    remaining_start = max(start, today)
    horizon = (end - remaining_start).days + 1
    forecast = forecast_daily(history, ahead, skip=(remaining_start - today).days)
    total, low, high = (
        actual + forecast.total,
        actual + forecast.total_low,
        actual + forecast.total_high,
    )
    naive = actual + float(run_rate(history, horizon).sum())
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    lines = [
        f"Forecast for {label}: {money(total)} (80% range {money(low)} to {money(high)}).",
        (f"{money(actual)} spent through {yesterday:%Y-%m-%d}; " if start < today else "")
        + f"{money(forecast.total)} expected over the {horizon} {'remaining ' if start < today else ''}days. "
        f"At the last 7 days' run rate it would be {money(naive)}.",
    ]
    if forecast.note:
        lines.append(f"Note: {forecast.note}.")
    days = pd.date_range(remaining_start, end, freq="D").date
    rule, heading = (
        ("W-SUN", "Week ending") if horizon <= WEEKLY_TABLE_DAYS else ("ME", "Month ending")
    )
    grouped = pd.Series(forecast.expected, index=pd.to_datetime(days)).resample(rule).sum()
    table = Table(
        [heading, "Expected"],
        [
            [f"{min(last.date(), end):%Y-%m-%d}", round(amount, 2)]
            for last, amount in grouped.items()
        ],
        frozenset({1}),
        currency,
    )
    context_line = (
        f"Metric: {METRIC_LABELS[args.metric]} · Method: {forecast.method}, fitted on {len(history)} days · "
        f"Filters: {describe_filters(filters, args.gpu_only)} · Currency: {currency}"
    )
    data = {
        "period": {"label": label, "start": start.isoformat(), "end": end.isoformat()},
        "metric": args.metric,
        "currency": currency,
        "actual_to_date": round(actual, 6),
        "expected_remaining": round(forecast.total, 6),
        "expected_total": round(total, 6),
        "low": round(low, 6),
        "high": round(high, 6),
        "run_rate_total": round(naive, 6),
        "remaining_days": horizon,
        "history_days": len(history),
        "method": forecast.method,
        "filters": [
            {"dimension": f.dimension, "values": list(f.values), "exclude": f.exclude}
            for f in filters
        ],
    }
    return Reply(text="\n".join(lines), table=table, context=context_line, data=data)
