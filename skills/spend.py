"""The spend skill: totals, breakdowns, filters and comparisons over FOCUS cost data."""

from __future__ import annotations

from skills.money import format_change, format_money, percent_change
from skills.periods import Period, parse_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import (
    TIME_DIMENSIONS,
    SpendArgs,
    SpendScope,
    resolve_dimension,
    resolve_filters,
)
from skills.spend_phrases import parse_spend_text
from storage.allocation import load_allocation
from storage.costs import (
    OWNER,
    SpendRow,
    data_coverage,
    dimension_label,
    render_sql,
    run_spend,
)

DEFAULT_TOP = 10


@SKILLS.skill(
    name="spend_query",
    args=SpendArgs,
    parse_text=parse_spend_text,
    command="spend",
    examples=(
        "what did we spend last month?",
        "spend by provider this month",
        "ec2 spend last week by region",
        "top 5 services last 30 days",
        "GPU spend by team in September",
        "billed cost for openai this quarter",
        "how does this month compare to last month?",
        "daily spend for research last 14 days",
    ),
    triggers=(
        r"\b(spend|spent|spending|cost|costs|costing|bill|billed|billing|invoice[sd]?|pay|paid|paying|charges?|expensive|how much)\b",
        r"\b(by|per|top|biggest|largest|breakdown|break down|compare|compared|vs|versus|daily|weekly|monthly)\b",
        r"\b(today|yesterday|last|this|since|month|week|quarter|year|q[1-4]|ytd|mtd)\b",
    ),
)
def spend_query(context: SkillContext, args: SpendArgs) -> Reply:
    """How much was spent, in a period, broken down and filtered as asked.

    Sums one cost metric of the FOCUS line items whose ChargePeriodStart falls in the period:
    EffectiveCost (amortized) unless billed, list or contracted cost is asked for. Can group by
    provider, service, account, region, resource, SKU, owner, day/week/month or any tag; filter on the
    same; keep the top N; compare with the previous period; restrict to GPU charges.
    """
    period = parse_period(args.period, context.now.date())
    currency, other_currencies = context.vocabulary.choose_currency(args.currency)
    filters = resolve_filters(args.filters, args.exclude, context)
    group_by = tuple(dict.fromkeys(resolve_dimension(name, context) for name in args.group_by))

    # Rules live in the store even when the line items are queried where they lie.
    owners = (
        load_allocation(context.engine, context.costs)
        if OWNER in group_by or any(f.dimension == OWNER for f in filters)
        else None
    )

    scope = SpendScope(
        args.metric, currency, filters, args.gpu_only, owners, tuple(other_currencies)
    )
    query = scope.query
    total_query = query(period, ())
    total = run_spend(context.costs, total_query)[0]
    previous_period = period.previous() if args.compare else None
    previous_total = (
        run_spend(context.costs, query(previous_period, ()))[0] if previous_period else None
    )
    rows = run_spend(context.costs, query(period, group_by)) if group_by else []
    previous_rows = (
        {row.key: row.amount for row in run_spend(context.costs, query(previous_period, group_by))}
        if group_by and previous_period
        else {}
    )
    return _spend_reply(
        context,
        args=args,
        period=period,
        previous_period=previous_period,
        scope=scope,
        group_by=group_by,
        total=total,
        previous_total=previous_total,
        rows=rows,
        previous_rows=previous_rows,
        sql=render_sql(context.costs, query(period, group_by)),
    )


def _spend_reply(
    context: SkillContext,
    *,
    args: SpendArgs,
    period: Period,
    previous_period: Period | None,
    scope: SpendScope,
    group_by: tuple[str, ...],
    total: SpendRow,
    previous_total: SpendRow | None,
    rows: list[SpendRow],
    previous_rows: dict[tuple[str, ...], float],
    sql: str,
) -> Reply:
    currency = scope.currency
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    subject = "GPU spend" if args.gpu_only else "Spend"
    joiner = " " if period.label.startswith(("since", "from")) else " for "
    headline = f"{subject}{joiner}{period.label}: {money(total.amount)}"
    if previous_total is not None and previous_period is not None:
        headline += (
            f", {format_change(total.amount, previous_total.amount, currency)} from "
            f"{previous_period.label} ({money(previous_total.amount)})"
        )
    lines = [headline + "."]
    if args.per_day:
        lines.append(
            f"Average {money(total.amount / period.days)} per day over {period.days} days."
        )
    if total.line_items == 0:
        first, last, count = data_coverage(context.costs)
        lines.append(
            f"No line items match. The store holds {count:,} line items"
            + (
                f" from {first:%Y-%m-%d} to {last:%Y-%m-%d}."
                if first
                else "; load some with `spendbot ingest`."
            )
        )
    shown, others = _top_rows(rows, group_by, args.top)
    table = (
        _table(
            shown,
            others,
            group_by,
            total.amount,
            previous_rows if previous_period else None,
            currency,
        )
        if rows
        else None
    )
    context_line = scope.context_line(f"{period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}")
    data = {
        **scope.as_data(),
        "period": period.as_dict(),
        "group_by": list(group_by),
        "total": round(total.amount, 6),
        "line_items": total.line_items,
        "rows": [
            _row_data(row, group_by, total.amount, previous_rows, previous_period) for row in shown
        ],
        "sql": sql,
    }
    if others:
        data["others"] = {
            "groups": len(others),
            "amount": round(sum(row.amount for row in others), 6),
        }
    if previous_total is not None and previous_period is not None:
        data["previous"] = {
            **previous_period.as_dict(),
            "total": round(previous_total.amount, 6),
            "change": round(total.amount - previous_total.amount, 6),
            "change_pct": _rounded(percent_change(total.amount, previous_total.amount)),
        }
    if args.per_day:
        data["per_day"] = round(total.amount / period.days, 6)
    return Reply(text="\n".join(lines), table=table, context=context_line, data=data)


def _top_rows(
    rows: list[SpendRow], group_by: tuple[str, ...], top: int | None
) -> tuple[list[SpendRow], list[SpendRow]]:
    """Time breakdowns read in date order; other breakdowns keep the largest groups."""
    if group_by and group_by[0] in TIME_DIMENSIONS and top is None:
        return sorted(rows, key=lambda row: row.key), []
    limit = top or DEFAULT_TOP
    return rows[:limit], rows[limit:]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _row_data(
    row: SpendRow,
    group_by: tuple[str, ...],
    total: float,
    previous_rows: dict[tuple[str, ...], float],
    previous_period: Period | None,
) -> dict:
    item = {
        "key": dict(zip(group_by, row.key, strict=True)),
        "amount": round(row.amount, 6),
        "share_pct": _rounded(row.amount / total * 100) if total else None,
    }
    if previous_period is not None:
        before = previous_rows.get(row.key, 0.0)
        item.update(
            previous_amount=round(before, 6),
            change=round(row.amount - before, 6),
            change_pct=_rounded(percent_change(row.amount, before)),
        )
    return item


def _table(
    shown: list[SpendRow],
    others: list[SpendRow],
    group_by: tuple[str, ...],
    total: float,
    previous_rows: dict[tuple[str, ...], float] | None,
    currency: str,
) -> Table:
    compare = previous_rows is not None
    columns = [dimension_label(name) for name in group_by] + ["Amount", "Share"]
    if compare:
        columns += ["Previous", "Change"]
    rows: list[list] = []
    for row in shown:
        cells: list = [
            *row.key,
            round(row.amount, 2),
            f"{row.amount / total * 100:.1f}%" if total else "",
        ]
        if compare:
            before = (previous_rows or {}).get(row.key, 0.0)
            change = percent_change(row.amount, before)
            cells += [round(before, 2), f"{change:+.1f}%" if change is not None else "new"]
        rows.append(cells)
    if others:
        rest = sum(row.amount for row in others)
        cells = [
            f"{len(others)} others",
            *[""] * (len(group_by) - 1),
            round(rest, 2),
            f"{rest / total * 100:.1f}%" if total else "",
        ]
        rows.append(cells + (["", ""] if compare else []))
    money_columns = {len(group_by)} | ({len(group_by) + 2} if compare else set())
    return Table(columns, rows, frozenset(money_columns), currency)
