"""The spend-change skill: why spend went up or down, against the previous period, by driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from skills.money import format_change, format_money, percent_change
from skills.periods import Period, parse_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import SpendArgs, SpendScope, resolve_filters
from skills.spend_phrases import parse_spend_text
from storage import anomaly_alerts
from storage.allocation import load_allocation
from storage.costs import NONE_LABEL, OWNER, dimension_label, render_sql, run_spend

DRIVER_DIMENSIONS = ("service", OWNER, "sub_account", "resource")
"""Where drivers are looked for, in the order ties and repeated moves are credited."""
DEFAULT_DRIVERS = 8
PLURALS = {"service": "services", OWNER: "owners", "sub_account": "sub accounts"}


class SpendChangeArgs(BaseModel):
    """Arguments of spend_change."""

    period: str = Field(
        "last week",
        description="Time phrase as spend_query takes it ('last week' by default, 'last month', "
        "'this month', 'September', 'last 7 days'...); it is compared with the period of equal "
        "length just before it.",
    )
    metric: Literal["effective", "billed", "list", "contracted"] = SpendArgs.model_fields["metric"]
    filters: dict[str, list[str]] = SpendArgs.model_fields["filters"]
    exclude: dict[str, list[str]] = SpendArgs.model_fields["exclude"]
    gpu_only: bool = SpendArgs.model_fields["gpu_only"]
    currency: str | None = SpendArgs.model_fields["currency"]
    top: int = Field(
        DEFAULT_DRIVERS, ge=1, le=25, description="How many drivers to list (default 8)."
    )


def parse_change_text(text: str, context: SkillContext) -> SpendChangeArgs:
    """Spend-change arguments from chat: the spend question's period, metric and filters."""
    spend = parse_spend_text(text, context)
    values = spend.model_dump(include={"metric", "filters", "exclude", "gpu_only", "currency"})
    if "period" in spend.model_fields_set:
        values["period"] = spend.period
    return SpendChangeArgs(**values)


@dataclass
class Driver:
    """One value of one dimension with its spend in both periods, and values moving with it."""

    dimension: str
    key: str
    previous: float
    current: float
    same_as: list[Driver] = field(default_factory=list, compare=False)

    @property
    def change(self) -> float:
        """Current minus previous spend."""
        return self.current - self.previous

    @property
    def status(self) -> str:
        """new, gone, up or down."""
        if round(self.previous, 2) == 0:
            return "new"
        if round(self.current, 2) == 0:
            return "gone"
        return "up" if self.change > 0 else "down"

    def same_move(self, other: Driver) -> bool:
        """Whether `other` changed by the same amount (to the cent): one move in two dimensions."""
        return round(self.change, 2) == round(other.change, 2)


def choose_drivers(candidates: list[Driver], limit: int) -> list[Driver]:
    """The `limit` largest changes across dimensions, a repeat of an already listed one merged.

    A service whose whole change is one resource's changes by the same amount in both
    dimensions; it is listed once, naming the other dimension's value, so rows show distinct moves.
    """
    ranked = sorted(
        (driver for driver in candidates if round(driver.change, 2) != 0),
        key=lambda driver: (
            -abs(round(driver.change, 2)),
            DRIVER_DIMENSIONS.index(driver.dimension),
            driver.key,
        ),
    )
    chosen: list[Driver] = []
    for driver in ranked:
        twin = next((listed for listed in chosen if listed.same_move(driver)), None)
        if twin is not None and twin.dimension != driver.dimension:
            twin.same_as.append(driver)
        elif len(chosen) < limit:
            chosen.append(driver)
    return chosen


def explained_share(drivers: list[Driver], total_change: float) -> tuple[str, float] | None:
    """The dimension whose listed rows best explain the change, and the percent they do."""
    if round(total_change, 2) == 0:
        return None
    sums: dict[str, float] = {}
    for driver in drivers:
        for row in (driver, *driver.same_as):
            sums[row.dimension] = sums.get(row.dimension, 0.0) + row.change
    if not sums:
        return None
    # The dimension coming closest to the whole change; offsetting rows can overshoot it.
    dimension = min(
        sums,
        key=lambda name: (
            round(abs(sums[name] / total_change - 1), 6),
            DRIVER_DIMENSIONS.index(name),
        ),
    )
    return dimension, sums[dimension] / total_change * 100


@SKILLS.skill(
    name="spend_change",
    args=SpendChangeArgs,
    parse_text=parse_change_text,
    command="change",
    examples=(
        "why did spend go up this week?",
        "what changed in spend last month?",
        "what drove the increase last month?",
        "explain the change in GPU spend last month",
        "why did ec2 costs go down last week?",
    ),
    triggers=(
        r"\bwhy\b.{0,60}?\b(?:go(?:ne)?|went)\s+(?:up|down)\b"
        r"|\bwhy\b.{0,60}?\b(?:increase[sd]?|decrease[sd]?|rise|rose|risen|jump(?:ed)?|"
        r"drop(?:ped)?|fall|fell|grow|grew|change[sd]?|higher|lower)\b",
        r"\bwhat\s+(?:has\s+|have\s+)?(?:changed|drove|drives|caused|is driving|explains)\b",
        r"\bexplain\s+(?:the\s+|this\s+|our\s+)?(?:change|increase|decrease|rise|jump|drop)\b",
        r"\bdrivers?\b|\bdrove\b",
    ),
)
def spend_change(context: SkillContext, args: SpendChangeArgs) -> Reply:
    """Why spend changed: a period against the one before, with the drivers of the change.

    Compares the period (last week by default) with the previous period of equal length, in
    the spend skill's metric (EffectiveCost unless asked otherwise): both totals, the change
    and its percent. Then lists the largest changes by service, owner (owner tags and
    allocation rules), sub account and resource: new, gone, up or down, with the share of the
    total change the listed rows explain, and names any open anomaly alert on a listed driver.
    Takes the spend skill's filters and GPU-only switch.
    """
    period = parse_period(args.period, context.now.date())
    previous = period.previous()
    currency, other_currencies = context.vocabulary.choose_currency(args.currency)
    filters = resolve_filters(args.filters, args.exclude, context)
    owners = load_allocation(context.engine, context.costs)

    scope = SpendScope(
        args.metric, currency, filters, args.gpu_only, owners, tuple(other_currencies)
    )
    query = scope.query

    queries = [query(period), query(previous)]
    total, previous_total = (run_spend(context.costs, q)[0].amount for q in queries)
    candidates: list[Driver] = []
    single: list[Driver] = []
    if total or previous_total:
        for dimension in DRIVER_DIMENSIONS:
            pair = (query(period, (dimension,)), query(previous, (dimension,)))
            queries += pair
            now, before = (
                {row.key[0]: row.amount for row in run_spend(context.costs, q)} for q in pair
            )
            found = [
                Driver(dimension, key, before.get(key, 0.0), now.get(key, 0.0))
                for key in now.keys() | before.keys()
                # Charges without a resource (support, tax, credits) are no resource's doing.
                if not (dimension == "resource" and key == NONE_LABEL)
            ]
            # One value (a filter pins it) holds the whole change and explains nothing, unless
            # every dimension is down to one value.
            (candidates if len(found) > 1 else single).extend(found)
    drivers = choose_drivers(candidates or single, args.top)
    share = explained_share(drivers, total - previous_total)
    reply_text = _text(args, period, previous, currency, total, previous_total, drivers, share)
    alerts = open_anomalies(context, period, drivers)
    if alerts:
        more = f" (and {len(alerts) - 1} more)" if len(alerts) > 1 else ""
        reply_text += f"\nOpen anomaly alert{more}: {alerts[0].alert['text']}"
    context_line = scope.context_line(
        f"{period.start:%Y-%m-%d} to {period.end:%Y-%m-%d} vs "
        f"{previous.start:%Y-%m-%d} to {previous.end:%Y-%m-%d}"
    )
    data = {
        **scope.as_data(),
        "period": period.as_dict(),
        "previous": previous.as_dict(),
        "total": round(total, 6),
        "previous_total": round(previous_total, 6),
        "change": round(total - previous_total, 6),
        "change_pct": _rounded(percent_change(total, previous_total)),
        "drivers": [_driver_data(driver, total - previous_total) for driver in drivers],
        "explained": {"dimension": share[0], "share_pct": round(share[1], 2)} if share else None,
        "anomaly_alerts": [state.id for state in alerts],
        "sql": ";\n\n".join(render_sql(context.costs, q) for q in queries) + ";",
    }
    table = _table(drivers, total - previous_total, currency) if drivers else None
    return Reply(text=reply_text, table=table, context=context_line, data=data)


def open_anomalies(
    context: SkillContext, period: Period, drivers: list[Driver]
) -> list[anomaly_alerts.AlertState]:
    """Open anomaly alerts on a listed driver whose episode overlaps the period."""
    keys = {row.key for driver in drivers for row in (driver, *driver.same_as)}
    start, end = period.start.isoformat(), period.end.isoformat()
    return [
        state
        for state in anomaly_alerts.open_alerts(context.engine)
        if (found := state.alert["alert"])["key"] in keys
        and found["date"] <= end
        and found["end_date"] >= start
    ]


def _text(
    args: SpendChangeArgs,
    period: Period,
    previous: Period,
    currency: str,
    total: float,
    previous_total: float,
    drivers: list[Driver],
    share: tuple[str, float] | None,
) -> str:
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    subject = "GPU spend" if args.gpu_only else "Spend"
    if not total and not previous_total:
        return (
            f"No spend in either period: neither {period.label} nor {previous.label} has "
            "matching line items."
        )
    lines = [
        f"{subject} for {period.label}: {money(total)}, "
        f"{format_change(total, previous_total, currency)} from {previous.label} "
        f"({money(previous_total)})."
    ]
    if not drivers:
        lines.append("No service, owner, account or resource changed.")
        return "\n".join(lines)
    top = drivers[0]
    lines.append(
        f"Biggest driver: {_name(top)}, {format_change(top.current, top.previous, currency)}."
    )
    if share is not None:
        dimension, percent = share
        noun = PLURALS.get(dimension, "resources")
        lines.append(f"The {noun} listed explain {percent:.0f}% of the change.")
    else:
        lines.append("The total barely moved; the largest offsetting changes are listed.")
    return "\n".join(lines)


def _name(driver: Driver) -> str:
    return f"{dimension_label(driver.dimension).lower()} {driver.key}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _driver_data(driver: Driver, total_change: float) -> dict:
    return {
        "dimension": driver.dimension,
        "key": driver.key,
        "status": driver.status,
        "previous_amount": round(driver.previous, 6),
        "amount": round(driver.current, 6),
        "change": round(driver.change, 6),
        "change_pct": _rounded(percent_change(driver.current, driver.previous)),
        "share_of_change_pct": _rounded(driver.change / total_change * 100)
        if round(total_change, 2)
        else None,
        "same_as": [{"dimension": row.dimension, "key": row.key} for row in driver.same_as],
    }


def _table(drivers: list[Driver], total_change: float, currency: str) -> Table:
    rows: list[list] = []
    for driver in drivers:
        name = driver.key
        if driver.same_as:
            name += f" (same as {', '.join(_name(row) for row in driver.same_as)})"
        change = percent_change(driver.current, driver.previous)
        rows.append(
            [
                dimension_label(driver.dimension),
                name,
                driver.status,
                round(driver.previous, 2),
                round(driver.current, 2),
                round(driver.change, 2),
                f"{change:+.1f}%" if change is not None else "new",
                f"{driver.change / total_change * 100:.0f}%" if round(total_change, 2) else "",
            ]
        )
    columns = ["Driver", "Name", "Move", "Previous", "Now", "Change", "Change %", "Of total change"]
    return Table(columns, rows, frozenset({3, 4, 5}), currency)
