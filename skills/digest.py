"""The digest skill: a week's spend in 30 seconds, with movers, unallocated spend and anomalies."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from pydantic import BaseModel, Field

from skills.anomalies import describe_alert, run_detection
from skills.anomaly_alerts import alerts_with_owners
from skills.charts import stacked_weeks_png
from skills.detection import Alert, DetectorParams
from skills.digest_budgets import bot_cost, bot_cost_line, budget_line, budget_statuses
from skills.errors import UserError
from skills.gpu_digest import idle_gpu_line, idle_gpu_summary
from skills.money import format_change, format_money, percent_change
from skills.periods import Period, parse_period, take_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import resolve_dimension
from storage.allocation import UNALLOCATED
from storage.cost_series import TEAM_TAG
from storage.costs import NONE_LABEL, OWNER, Filter, SpendQuery, run_spend
from storage.focus import METRIC_LABELS

MOVERS = (("service", "Service"), (TEAM_TAG, "Team"), ("resource", "Resource"))
TOP_MOVERS = 3
CHART_WEEKS = 8
CHART_SERIES = 5
ANOMALY_LOOKBACK_DAYS = 14
SCOPES = {
    TEAM_TAG: "owner",
    "provider": "provider",
    "service": "service",
    "sub_account": "sub_account",
}
"""Scopes a digest can take, with the alert field that scopes its anomalies."""
SCOPE_WORDS = re.compile(r"\b([a-z][\w-]*)\s*[=:]\s*([\w.\-/]+)|\bteam\s+([\w.\-]+)", re.IGNORECASE)


class DigestShowArgs(BaseModel):
    """Arguments of digest_show."""

    period: str = Field(
        "last week",
        description="The week to summarize: 'last week' (the last full ISO week, default), "
        "'this week', or any period phrase; it is compared with the period just before.",
    )
    scope: dict[str, str] = Field(
        default_factory=dict,
        description="Restrict to one team, provider, service or sub account, e.g. {'team': 'research'}.",
    )
    currency: str | None = Field(
        None, description="Billing currency; default: the store's most common one."
    )


def parse_digest_text(text: str, context: SkillContext) -> DigestShowArgs:
    """Digest arguments from chat: a period and a scope ('for team research', 'team=search')."""
    values: dict = {}
    phrase, text = take_period(text, context.now.date())
    if phrase:
        values["period"] = phrase
    scope: dict[str, str] = {}
    for match in SCOPE_WORDS.finditer(text):
        if match.group(3):
            scope["team"] = match.group(3)
        else:
            scope[match.group(1).lower()] = match.group(2)
    if not scope:
        for mention in context.vocabulary.find_mentions(text):
            if mention.dimension == TEAM_TAG or mention.dimension in SCOPES:
                scope[mention.dimension.removeprefix("tag:")] = mention.value
                break
    values["scope"] = scope
    return DigestShowArgs(**values)


def _scope_filters(args: DigestShowArgs, context: SkillContext) -> tuple[Filter, ...]:
    filters = []
    for name, value in args.scope.items():
        dimension = resolve_dimension(name, context)
        if dimension not in SCOPES:
            raise UserError(
                f"A digest cannot be scoped by '{name}'",
                "scope it by team, provider, service or sub_account, e.g. team=research",
            )
        filters.append(Filter(dimension, (context.vocabulary.resolve(dimension, value),)))
    return tuple(filters)


def _movers(rows: dict, previous: dict) -> list[dict]:
    keys = set(rows) | set(previous)
    movers = [
        {
            "key": key,
            "amount": round(rows.get(key, 0.0), 6),
            "previous_amount": round(previous.get(key, 0.0), 6),
            "change": round(rows.get(key, 0.0) - previous.get(key, 0.0), 6),
            "change_pct": _rounded(percent_change(rows.get(key, 0.0), previous.get(key, 0.0))),
        }
        for key in keys
    ]
    movers.sort(key=lambda item: (-abs(item["change"]), item["key"]))
    return [item for item in movers if round(item["change"], 2) != 0][:TOP_MOVERS]


def _short(key: str) -> str:
    """Long resource paths (Azure, GCP) by their last part; the full id stays in data."""
    return f"…/{key.rsplit('/', 1)[-1]}" if len(key) > 40 and "/" in key else key


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _change_cell(item: dict, currency: str) -> str:
    sign = "+" if item["change"] >= 0 else "-"
    text = f"{sign}{format_money(abs(item['change']), currency)}"
    return (
        f"{text} ({item['change_pct']:+.0f}%)"
        if item["change_pct"] is not None
        else f"{text} (new)"
    )


@SKILLS.skill(
    name="digest_show",
    args=DigestShowArgs,
    parse_text=parse_digest_text,
    command="digest",
    examples=(
        "weekly digest",
        "give me the digest for team research",
        "digest for last week",
        "weekly summary for team=search",
    ),
    triggers=(
        r"\b(digest|recap|roundup|round-up)\b",
        r"\b(weekly|daily|monthly|week's|this week's|last week's)\s+(digest|summary|recap|report|roundup)\b",
        r"\bgive me the digest\b|\bwhat happened (this|last) week\b",
    ),
)
def digest_show(context: SkillContext, args: DigestShowArgs) -> Reply:
    """A weekly digest: total and change, top movers, unallocated spend, open anomalies, a chart.

    Covers the last full ISO week (Monday to Sunday, UTC) unless another period is asked for,
    compared with the period just before, in EffectiveCost (amortized, all charges, as the
    spend skill counts them). Top movers are the services, teams and resources whose spend
    changed most; unallocated spend is spend no owner tag or allocation rule claims; open anomalies are the
    anomaly detector's alerts still active in the period. The chart shows the last 8 weeks by
    the largest services. Can be scoped to one team, provider, service or sub account. Where
    idle GPUs were proposed or stopped, a line gives the daily waste awaiting a decision, the
    stops in the period with their saving per day, and the saving billing shows in the period.
    Budgets in scope are summed up with the worst one's spend and forecast; an unscoped digest
    also gives what spendbot's own LLM questions cost in the period.
    """
    today = context.now.date()
    period = parse_period(args.period, today)
    previous = period.previous()
    currency, _ = context.vocabulary.choose_currency(args.currency)
    filters = _scope_filters(args, context)
    team_scope = any(f.dimension == TEAM_TAG for f in filters)

    def spend(for_period: Period, group_by: tuple[str, ...] = ()) -> dict:
        query = SpendQuery(
            start=for_period.start_datetime(),
            end=for_period.end_exclusive(),
            metric="effective",
            currency=currency,
            group_by=group_by,
            filters=filters,
        )
        return {
            (row.key[0] if group_by else "total"): row.amount
            for row in run_spend(context.engine, query, context.costs)
        }

    total = spend(period)["total"]
    previous_total = spend(previous)["total"]
    movers = {}
    for dimension, _ in MOVERS:
        if dimension == TEAM_TAG and team_scope:
            continue
        now_rows = spend(period, (dimension,))
        before_rows = spend(previous, (dimension,))
        if dimension == "resource":
            now_rows.pop(NONE_LABEL, None)
            before_rows.pop(NONE_LABEL, None)
        movers[dimension.removeprefix("tag:")] = _movers(now_rows, before_rows)
    unallocated = None
    if not team_scope:
        # The same owner resolution as "spend by owner": tag, then allocation rules, then defaults.
        amount = spend(period, (OWNER,)).get(UNALLOCATED, 0.0)
        unallocated = {
            "amount": round(amount, 6),
            "share_pct": _rounded(amount / total * 100) if total else None,
        }
    anomalies = _open_anomalies(context, period, currency, args, filters)
    chart_data, chart = _chart(context, period, currency, filters, args)
    reply = _digest_reply(
        period=period,
        previous=previous,
        currency=currency,
        filters=filters,
        total=total,
        previous_total=previous_total,
        movers=movers,
        unallocated=unallocated,
        anomalies=anomalies,
        chart_data=chart_data,
        chart=chart,
    )
    reply = _with_budgets_and_bot_cost(context, reply, period, currency, filters)
    return _with_idle_gpus(context, reply, period, currency, filters)


def _with_budgets_and_bot_cost(
    context: SkillContext, reply: Reply, period: Period, currency: str, filters: tuple[Filter, ...]
) -> Reply:
    """The digest with where its budgets stand today and, unscoped, spendbot's own LLM cost."""
    statuses = budget_statuses(context, filters, currency)
    lines = [line] if (line := budget_line(statuses, currency)) else []
    data = {**reply.data, "budgets": [status.as_dict() for status in statuses]}
    cost = (
        bot_cost(context, period.start_datetime(), period.end_exclusive()) if not filters else None
    )
    if cost is not None:
        lines.append(bot_cost_line(cost))
        data["bot_cost"] = cost
    return replace(reply, text="\n".join([reply.text, *lines]), data=data)


def _with_idle_gpus(
    context: SkillContext, reply: Reply, period: Period, currency: str, filters: tuple[Filter, ...]
) -> Reply:
    """The digest with its idle-GPU line, for everything or one team (the ledger knows owners)."""
    if any(f.dimension != TEAM_TAG for f in filters):
        return reply
    owner = filters[0].values[0] if filters else None
    start, end = period.start_datetime(), period.end_exclusive()
    summary = idle_gpu_summary(context, start, end, currency, owner)
    if summary is None:
        return reply
    line = idle_gpu_line(summary, currency, period.label)
    return replace(reply, text=f"{reply.text}\n{line}", data={**reply.data, "idle_gpus": summary})


def _open_anomalies(
    context: SkillContext,
    period: Period,
    currency: str,
    args: DigestShowArgs,
    filters: tuple[Filter, ...],
) -> list[Alert]:
    """Alerts active during the period: detection from two weeks before it, still open in it."""
    lookback = Period(
        period.start - timedelta(days=ANOMALY_LOOKBACK_DAYS), period.end, "digest window"
    )
    detection = run_detection(context, lookback, DetectorParams(), currency)
    wanted = {SCOPES[f.dimension]: f.values[0] for f in filters}
    # Owners as the anomaly alerts name them: tag, then allocation rule, then account default.
    open_alerts = alerts_with_owners(
        context.engine,
        [alert for alert in detection.alerts if alert.episode.end >= period.start],
        context.costs,
    )
    return [
        alert
        for alert in open_alerts
        if all(getattr(alert, field) == value for field, value in wanted.items())
    ]


def _chart(
    context: SkillContext,
    period: Period,
    currency: str,
    filters: tuple[Filter, ...],
    args: DigestShowArgs,
) -> tuple[dict, bytes]:
    """Weekly spend by the largest services over the 8 weeks ending with the period."""
    last_monday = period.end - timedelta(days=period.end.weekday())
    first_monday = last_monday - timedelta(weeks=CHART_WEEKS - 1)
    query = SpendQuery(
        start=Period(first_monday, period.end, "chart").start_datetime(),
        end=Period(first_monday, period.end, "chart").end_exclusive(),
        metric="effective",
        currency=currency,
        group_by=("week", "service"),
        filters=filters,
    )
    weeks = [(first_monday + timedelta(weeks=i)).isoformat() for i in range(CHART_WEEKS)]
    amounts: dict[str, dict[str, float]] = {}
    for row in run_spend(context.engine, query, context.costs):
        week, service = row.key
        amounts.setdefault(service, {})[week] = amounts.get(service, {}).get(week, 0.0) + row.amount
    ranked = sorted(amounts, key=lambda name: -sum(amounts[name].values()))
    top, rest = ranked[:CHART_SERIES], ranked[CHART_SERIES:]
    series = {name: [round(amounts[name].get(week, 0.0), 2) for week in weeks] for name in top}
    if rest:
        series[f"{len(rest)} other services"] = [
            round(sum(amounts[name].get(week, 0.0) for name in rest), 2) for week in weeks
        ]
    scope = _scope_label(filters)
    title = f"Weekly spend by service{scope}, {weeks[0]} to {period.end:%Y-%m-%d}"
    data = {"format": "png", "dimension": "service", "weeks": weeks, "series": series}
    return data, stacked_weeks_png(weeks, series, title, currency)


def _scope_label(filters: tuple[Filter, ...]) -> str:
    names = {TEAM_TAG: "team", "sub_account": "sub account"}
    return "".join(f" for {names.get(f.dimension, f.dimension)} {f.values[0]}" for f in filters)


def _digest_reply(
    *,
    period: Period,
    previous: Period,
    currency: str,
    filters: tuple[Filter, ...],
    total: float,
    previous_total: float,
    movers: dict[str, list[dict]],
    unallocated: dict | None,
    anomalies: list[Alert],
    chart_data: dict,
    chart: bytes,
) -> Reply:
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    scope = _scope_label(filters)
    lines = [
        f"Digest{scope}, {period.label}: {money(total)}, {format_change(total, previous_total, currency)} from "
        f"{previous.label} ({money(previous_total)})."
    ]
    if total == 0 and previous_total == 0:
        lines.append(
            "No spend is recorded for these weeks; load FOCUS files with `spendbot ingest`."
        )
    elif unallocated is not None:
        share = unallocated["share_pct"]
        lines.append(
            f"Unallocated (no owner tag or allocation rule): {money(unallocated['amount'])}"
            + (f" ({share:.1f}% of spend)." if share is not None else ".")
        )
    if anomalies:
        count = f"{len(anomalies)} open anomal{'y' if len(anomalies) == 1 else 'ies'}"
        lines.append(f"{count}; biggest: {describe_alert(anomalies[0], currency)}")
        lines.extend(f"• {describe_alert(alert, currency)}" for alert in anomalies[1:3])
    else:
        lines.append("No open anomalies.")
    labels = {"service": "Service", "team": "Team", "resource": "Resource"}
    rows = [
        [
            labels[dimension],
            _short(item["key"]) if item["key"] != NONE_LABEL else "(no team tag)",
            round(item["amount"], 2),
            _change_cell(item, currency),
        ]
        for dimension, items in movers.items()
        for item in items
    ]
    table = Table(["Top mover", "Name", "This period", "Change"], rows, frozenset({2}), currency)
    context = (
        f"Metric: {METRIC_LABELS['effective']}, all charges · Period: {period.start:%Y-%m-%d} to "
        f"{period.end:%Y-%m-%d} vs {previous.start:%Y-%m-%d} to {previous.end:%Y-%m-%d} (UTC, by "
        f"ChargePeriodStart) · Scope: {scope.removeprefix(' for ') or 'everything'} · Anomalies: "
        f"Usage and Purchase charges, daily · Chart: last {CHART_WEEKS} weeks by service · "
        f"Currency: {currency}"
    )
    data = {
        "metric": "effective",
        "currency": currency,
        "period": period.as_dict(),
        "previous": previous.as_dict(),
        "scope": {f.dimension.removeprefix("tag:"): f.values[0] for f in filters},
        "total": round(total, 6),
        "previous_total": round(previous_total, 6),
        "change": round(total - previous_total, 6),
        "change_pct": _rounded(percent_change(total, previous_total)),
        "movers": movers,
        "unallocated": unallocated,
        "anomalies": [alert.as_dict() for alert in anomalies],
        "chart": chart_data,
    }
    return Reply(text="\n".join(lines), table=table, context=context, data=data, chart=chart)
