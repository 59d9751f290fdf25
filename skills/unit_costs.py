"""The unit-cost skill: cost per 1M tokens by model, per GPU-hour by family, per business unit."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, Field

from skills.errors import UserError
from skills.money import SYMBOLS, format_money
from skills.periods import Period, parse_period, take_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import describe_filters, resolve_filters
from storage.costs import Filter, SpendQuery, render_sql, run_spend
from storage.gpu_counts import gpus_per_instance, instance_family
from storage.unit_costs import (
    HOUR_UNITS,
    TOKEN_UNITS,
    UnitRow,
    metric_names,
    metric_total,
    run_units,
)

Measure = Literal["tokens", "gpu_hours", "metric"]
DEFAULT_PER: dict[str, float] = {"tokens": 1e6, "gpu_hours": 1.0, "metric": 1e3}
_SCALE_WORDS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "mm": 1e6, "b": 1e9}
_PER = re.compile(
    r"\b(?P<lead>per|a|an|one|each|every)\s+(?P<number>\d[\d,]*(?:\.\d+)?)?\s*"
    r"(?P<scale>k|m|mm|b|thousand|million)?\b\s*(?P<noun>[a-z][\w-]*)",
    re.IGNORECASE,
)
_GPU_HOURS = re.compile(r"\bgpu[- ]?h(?:ou)?rs?\b", re.IGNORECASE)
_TOKENS = re.compile(r"\btokens?\b", re.IGNORECASE)
_NOT_METRICS = {"gpu", "gpus", "token", "tokens", "hour", "hours", "day", "days", "month", "week"}


class UnitCostArgs(BaseModel):
    """Arguments of unit_cost."""

    measure: Measure = Field(
        "tokens",
        description="tokens: cost per tokens by provider and model (Usage rows whose "
        "ConsumedUnit is tokens); gpu_hours: cost per GPU-hour by provider and instance family "
        "(instance hours times GPUs per instance); metric: spend divided by a business metric "
        "loaded with `spendbot ingest-metric`.",
    )
    metric_name: str | None = Field(
        None, description="For measure=metric: the loaded metric, e.g. 'inferences'."
    )
    per: float | None = Field(
        None,
        gt=0,
        description="Units per quoted price: default 1,000,000 tokens, 1 GPU-hour, 1,000 of a "
        "business metric.",
    )
    period: str = Field(
        "last 30 days", description="Time phrase, as spend_query: 'last month', 'this quarter'."
    )
    families: list[str] = Field(
        default_factory=list,
        description="For gpu_hours: only these instance families, e.g. ['p4d', 'a2'].",
    )
    filters: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Keep only these values, keyed by dimension or tag key, e.g. "
        "{'sku': ['gpt-4o']}, {'provider': ['OpenAI']}, {'owner': ['search']}.",
    )
    currency: str | None = Field(
        None, description="Billing currency; default: the store's most common one."
    )


def _per(match: re.Match[str]) -> float:
    number = float((match["number"] or "1").replace(",", ""))
    return number * _SCALE_WORDS.get((match["scale"] or "").lower(), 1.0)


def _metric_name(noun: str, names: list[str]) -> str | None:
    """The loaded metric a noun names: exact, or singular and plural forms alike."""
    wanted = noun.lower().rstrip("s")
    return next((name for name in names if name.lower().rstrip("s") == wanted), None)


def parse_unit_text(text: str, context: SkillContext) -> UnitCostArgs:
    """'what does a million tokens of gpt-4o cost us?', 'cost per GPU hour on p4d vs a2'."""
    values: dict = {}
    phrase, text = take_period(text, context.now.date())
    if phrase:
        values["period"] = phrase
    if _GPU_HOURS.search(text):
        values["measure"] = "gpu_hours"
        known = {
            instance_family(name).lower(): instance_family(name)
            for name in context.vocabulary.values("instance_type")
        }
        named = (
            known.get(word.lower()) or known.get(instance_family(word).lower())
            for word in re.findall(r"[\w.-]+", text)
        )
        values["families"] = list(dict.fromkeys(family for family in named if family))
    elif _TOKENS.search(text):
        values["measure"] = "tokens"
        per = next((m for m in _PER.finditer(text) if _TOKENS.fullmatch(m["noun"])), None)
        if per and (per["number"] or per["scale"]):
            values["per"] = _per(per)
    else:
        names = metric_names(context.engine)
        for match in _PER.finditer(text):
            counted = match["lead"].lower() == "per" or match["number"] or match["scale"]
            if match["noun"].lower() in _NOT_METRICS or not counted:
                continue
            name = _metric_name(match["noun"], names)
            if name is None:
                raise UserError(
                    f"No business metric called '{match['noun']}' is loaded",
                    "load one with `spendbot ingest-metric FILE.csv` (date,name,value)"
                    + (f"; loaded: {', '.join(names)}" if names else ""),
                )
            values.update(measure="metric", metric_name=name, per=_per(match))
            text = text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]
            break
        else:
            raise UserError(
                "Cost per what?",
                "ask for tokens, GPU hours or a loaded metric, e.g. 'cost per 1K inferences'",
            )
    filters: dict[str, list[str]] = {}
    for mention in context.vocabulary.find_mentions(text):
        if mention.dimension != "instance_type":
            filters.setdefault(mention.dimension, []).append(mention.value)
    values["filters"] = filters
    return UnitCostArgs(**values)


def _per_label(per: float, noun: str) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if per >= size and per % size == 0:
            return f"{per / size:g}{suffix} {noun}"
    return f"{per:g} {noun}" if per != 1 else noun


def _unit_price(amount: float, currency: str) -> str:
    """A unit price to three significant digits below one: ``$0.00376``, else ``$2.54``."""
    if abs(amount) >= 1 or amount == 0:
        return format_money(amount, currency)
    symbol = SYMBOLS.get(currency.upper())
    number = f"{amount:.3g}" if "e" not in f"{amount:.3g}" else f"{amount:.10f}".rstrip("0")
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def _quantity(amount: float) -> str:
    return f"{amount:,.0f}" if amount >= 100 else f"{amount:,.2f}"


@SKILLS.skill(
    name="unit_cost",
    args=UnitCostArgs,
    parse_text=parse_unit_text,
    command="unitcost",
    examples=(
        "what does a million tokens of gpt-4o cost us?",
        "cost per 1K tokens by model last month",
        "cost per GPU hour on p4d vs a2",
    ),
    triggers=(
        r"\bcost\s+per\s+(?:\d[\d,.]*\s*(?:k|m|mm|b)?|(?:a\s+)?(?:thousand|million))\s*[a-z]\w*.*",
        r"\bcost\s+per\s+(?:inference|request|query|queries|user|customer|transaction|call|"
        r"prediction|order|session|document|image)s?\b.*",
        r"\bper\s+gpu[- ]?h(?:ou)?rs?\b.*",
        r"\b(?:\d[\d,]*\s*(?:k|m)|(?:a|one)\s+(?:thousand|million)|thousand|million)\s+tokens?\b.*",
        r"\bunit\s+(?:costs?|economics)\b.*",
    ),
)
def unit_cost(context: SkillContext, args: UnitCostArgs) -> Reply:
    """Unit costs: per 1M tokens by provider and model, per GPU-hour by family, per business unit.

    Tokens: EffectiveCost of Usage rows whose ConsumedUnit is tokens divided by their
    ConsumedQuantity, per provider and model (SkuId). GPU-hours: EffectiveCost of Usage rows of
    GPU instance types divided by instance hours times GPUs per instance, per provider and
    family (p4d, a2, ND_v4...). Metric: the period's spend (all charges, optionally filtered)
    divided by the sum of a metric loaded with `spendbot ingest-metric` over the same days.
    """
    period = parse_period(args.period, context.now.date())
    currency, _ = context.vocabulary.choose_currency(args.currency)
    filters = resolve_filters(args.filters, {}, context)
    per = args.per or DEFAULT_PER[args.measure]
    if args.measure == "metric":
        return _metric_reply(context, args, period, currency, filters, per)
    query = SpendQuery(
        period.start_datetime(),
        period.end_exclusive(),
        currency=currency,
        group_by=("provider", "sku" if args.measure == "tokens" else "instance_type"),
        filters=filters,
    )
    if args.measure == "tokens":
        rows, sql = run_units(context.engine, query, TOKEN_UNITS, costs=context.costs)
        groups = [(row.key, row.cost, row.quantity, "") for row in rows]
        return _unit_reply(
            groups, "tokens", ("Provider", "Model"), per, period, currency, filters, sql
        )
    rows, sql = run_units(context.engine, query, HOUR_UNITS, gpu=True, costs=context.costs)
    groups, unknown = _gpu_groups(rows, args.families)
    reply = _unit_reply(
        groups, "GPU-hours", ("Provider", "Family"), per, period, currency, filters, sql
    )
    if unknown:
        note = f"\nLeft out (GPU count unknown): {', '.join(sorted(unknown))}."
        return Reply(
            text=reply.text + note,
            table=reply.table,
            context=reply.context,
            data={**reply.data, "unknown_instance_types": sorted(unknown)},
        )
    return reply


def _gpu_groups(
    rows: list[UnitRow], families: list[str]
) -> tuple[list[tuple[tuple[str, ...], float, float, str]], set[str]]:
    """Instance-type rows summed by provider and family, in GPU-hours; types of unknown count."""
    wanted = {family.lower() for family in families}
    cost: dict[tuple[str, str], float] = defaultdict(float)
    gpu_hours: dict[tuple[str, str], float] = defaultdict(float)
    types: dict[tuple[str, str], set[str]] = defaultdict(set)
    unknown: set[str] = set()
    for row in rows:
        provider, instance_type = row.key
        family = instance_family(instance_type)
        if wanted and family.lower() not in wanted:
            continue
        gpus = gpus_per_instance(instance_type)
        if gpus is None:
            unknown.add(instance_type)
            continue
        cost[provider, family] += row.cost
        gpu_hours[provider, family] += row.quantity * gpus
        types[provider, family].add(f"{instance_type} ({gpus} GPU{'s' if gpus > 1 else ''})")
    groups = [
        (key, cost[key], gpu_hours[key], ", ".join(sorted(types[key])))
        for key in sorted(cost, key=lambda key: -cost[key])
    ]
    return groups, unknown


def _unit_reply(
    groups: list[tuple[tuple[str, ...], float, float, str]],
    noun: str,
    headings: tuple[str, str],
    per: float,
    period: Period,
    currency: str,
    filters: tuple[Filter, ...],
    sql: str,
) -> Reply:
    unit = _per_label(per, noun.rstrip("s") if per == 1 else noun)
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    priced = [group for group in groups if group[2] > 0]
    where = period.label
    if not priced:
        text = f"No usage measured in {noun} matches, {where}."
    else:
        lines = [f"Cost per {unit}, {where}:"]
        for key, cost, quantity, _ in priced[:10]:
            lines.append(
                f"• {key[1]} ({key[0]}): {_unit_price(cost / quantity * per, currency)} "
                f"({money(cost)} for {_quantity(quantity)} {noun})"
            )
        cost, quantity = sum(g[1] for g in priced), sum(g[2] for g in priced)
        if len(priced) > 1:
            lines.append(
                f"All together: {_unit_price(cost / quantity * per, currency)} per {unit}."
            )
        text = "\n".join(lines)
    detail = "Instance types" if noun == "GPU-hours" else None
    table = Table(
        [*headings, "Cost", noun.capitalize() if noun == "tokens" else noun, f"Per {unit}"]
        + ([detail] if detail else []),
        [
            [*key, round(cost, 2), round(quantity, 2), round(cost / quantity * per, 4)]
            + ([types] if detail else [])
            for key, cost, quantity, types in priced
        ],
        frozenset({2, 4}),
        currency,
    )
    basis = (
        "ConsumedQuantity of Usage rows whose ConsumedUnit is tokens"
        if noun == "tokens"
        else "instance hours (ConsumedQuantity) of GPU instance Usage rows × GPUs per instance"
    )
    return Reply(
        text=text,
        table=table if priced else None,
        context=f"Metric: EffectiveCost (amortized) ÷ {basis} · Period: {period.start:%Y-%m-%d} "
        f"to {period.end:%Y-%m-%d} (UTC, by ChargePeriodStart) · Filters: "
        f"{describe_filters(filters, False)} · Currency: {currency}",
        data={
            "measure": noun,
            "per": per,
            "currency": currency,
            "period": period.as_dict(),
            "rows": [
                {
                    "provider": key[0],
                    "group": key[1],
                    "cost": round(cost, 6),
                    "quantity": quantity,
                    "unit_cost": cost / quantity * per,
                }
                for key, cost, quantity, _ in priced
            ],
            "sql": sql,
        },
    )


def _metric_reply(
    context: SkillContext,
    args: UnitCostArgs,
    period: Period,
    currency: str,
    filters: tuple[Filter, ...],
    per: float,
) -> Reply:
    name = args.metric_name or ""
    names = metric_names(context.engine)
    if (found := _metric_name(name, names)) is None:
        raise UserError(
            f"No business metric called '{name}' is loaded",
            "load one with `spendbot ingest-metric FILE.csv` (date,name,value)"
            + (f"; loaded: {', '.join(names)}" if names else ""),
        )
    query = SpendQuery(
        period.start_datetime(), period.end_exclusive(), currency=currency, filters=filters
    )
    spend = run_spend(context.engine, query, context.costs)[0].amount
    metric = metric_total(context.engine, found, period.start, period.end)
    unit = _per_label(per, found)
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    where = period.label
    if metric.total <= 0:
        text = f"No {found} are recorded for {where}, so there is no cost per {unit}."
        unit_cost_value = None
    else:
        unit_cost_value = spend / metric.total * per
        text = (
            f"Cost per {unit}, {where}: {_unit_price(unit_cost_value, currency)} "
            f"({money(spend)} spend ÷ {_quantity(metric.total)} {found})."
        )
        if metric.days_with_values < period.days:
            text += (
                f"\nNote: {found} has values on {metric.days_with_values} of the "
                f"{period.days} days."
            )
    return Reply(
        text=text,
        context=f"Metric: EffectiveCost (amortized), all charges ÷ sum of {found} · Period: "
        f"{period.start:%Y-%m-%d} to {period.end:%Y-%m-%d} (UTC) · Filters: "
        f"{describe_filters(filters, False)} · Currency: {currency}",
        data={
            "measure": "metric",
            "metric": found,
            "per": per,
            "currency": currency,
            "period": period.as_dict(),
            "spend": round(spend, 6),
            "metric_total": metric.total,
            "metric_days": metric.days_with_values,
            "unit_cost": unit_cost_value,
            "sql": render_sql(context.engine, query, context.costs) + ";\n" + metric.sql,
        },
    )
