"""Owner skills: assign spend to owners with allocation rules, list them, find owners, coverage.

Changing rules is a `write`: a holder of the finops role runs it at once, anyone else is
refused, and every change is audited. Rules are resolved when spend is queried
(storage.allocation), so they apply to data already loaded.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select

from skills.errors import UserError
from skills.money import format_money
from skills.periods import parse_period, take_period
from skills.registry import SKILLS, ActionPlan, ApprovalPolicy, SkillContext
from skills.replies import Reply, Table
from skills.spend_args import resolve_dimension
from storage import allocation
from storage.allocation import UNALLOCATED, describe_criteria
from storage.costs import OWNER, Filter, SpendQuery, dimension_label, render_sql, run_spend
from storage.models import cost_line_items as items

FINOPS = "finops"
RULE_POLICY = ApprovalPolicy(required=False)
"""A finops holder changes rules at once; others are refused (and the refusal is audited)."""

_MATCH_WORDS = {
    "account": "sub_account",
    "accounts": "sub_account",
    "subscription": "sub_account",
    "billing account": "billing_account",
    "service": "service",
    "region": "region",
    "provider": "provider",
    "cloud": "provider",
    "sku": "sku",
    "model": "sku",
    "resource": "resource",
    "instance": "resource",
    "resources": "resource",
    "instances": "resource",
}
_RESOURCE = re.compile(r"^(?:i-[0-9a-f]{4,17}|arn:\S+|\S*[*?]\S*)$", re.I)
_KEY_VALUE = re.compile(r"^(?:tag\s+)?([a-z][\w-]*)\s*[=:]\s*(\S+)$", re.I)


class OwnerAssignArgs(BaseModel):
    """Arguments of owner_assign: the owner and what spend to give them."""

    owner: str = Field(description="The team (or person) that owns the matching spend.")
    provider: str | None = Field(None, description="Provider name, e.g. AWS.")
    billing_account: str | None = Field(None, description="Billing account id or name.")
    sub_account: str | None = Field(
        None, description="Sub account (AWS account, GCP project, Azure subscription) id or name."
    )
    service: str | None = Field(None, description="Service name, e.g. Amazon Bedrock.")
    region: str | None = Field(None, description="Region id or name.")
    sku: str | None = Field(None, description="SKU id.")
    resource: str | None = Field(
        None, description="Resource id or name; * and ? are wildcards, e.g. i-0abc*."
    )
    tag_key: str | None = Field(None, description="A tag key that must be present.")
    tag_value: str | None = Field(None, description="Its value (wildcards allowed).")
    override: bool = Field(
        False, description="Win over the spend's own owner tag (team, owner, cost-center)."
    )
    project: str | None = Field(None, description="Optional project the spend belongs to.")

    @model_validator(mode="after")
    def _has_criteria(self) -> OwnerAssignArgs:
        self.owner = self.owner.strip()
        if not self.owner or self.owner == UNALLOCATED:
            raise ValueError("name the owner, e.g. ml-platform")
        if not self.criteria:
            raise ValueError("say what spend to assign: an account, service, resource or tag")
        if self.tag_value and not self.tag_key:
            raise ValueError("tag_value needs tag_key")
        return self

    @property
    def criteria(self) -> dict[str, str]:
        """The match criteria that are set."""
        return {
            name: value
            for name in allocation.MATCH_FIELDS
            if (value := getattr(self, name)) is not None and str(value).strip()
        }


def _what(words: str, context: SkillContext) -> dict[str, str]:
    """Criteria for the thing named in 'assign <thing> to <owner>'."""
    text = re.sub(r"^(?:all\s+)?(?:the\s+)?", "", words.strip(), flags=re.I)
    text = re.sub(r"\s+(?:spend|costs?)$", "", text, flags=re.I)
    if match := _KEY_VALUE.match(text):
        return {"tag_key": match[1].lower(), "tag_value": match[2]}
    hint: str | None = None
    for word in sorted(_MATCH_WORDS, key=len, reverse=True):
        if m := re.match(rf"^{word}\s+(.+)$|^(.+?)\s+{word}$", text, re.I):
            hint, text = _MATCH_WORDS[word], (m[1] or m[2]).strip()
            break
    if hint == "resource" or _RESOURCE.match(text):
        return {"resource": text}
    mentions = [
        mention
        for mention in context.vocabulary.find_mentions(text)
        if hint is None or mention.dimension == hint
    ]
    for mention in mentions:
        if mention.dimension.startswith("tag:"):
            return {"tag_key": mention.dimension.removeprefix("tag:"), "tag_value": mention.value}
        if mention.dimension in allocation.MATCH_FIELDS:
            return {mention.dimension: mention.value}
    if hint:
        return {hint: text}
    raise UserError(
        f"I don't know '{text}' in the billing data",
        "name an account, service, region, provider, resource id or tag=value, "
        "e.g. 'assign the ml-dev account to ml-platform'",
    )


def parse_assign_text(text: str, context: SkillContext) -> OwnerAssignArgs:
    """'assign the ml-dev account to ml-platform', 'allocate team=x to y, override tags'."""
    match = re.search(
        r"\b(?:assign|allocate|attribute)\s+(?P<what>.+?)\s+to\s+(?:the\s+)?(?:team\s+)?"
        r"['\"]?(?P<owner>[\w.-]+)['\"]?(?:\s+team)?",
        text,
        re.I,
    )
    if not match:
        raise UserError(
            "I could not tell what to assign to whom.",
            "e.g. 'assign the ml-dev account to ml-platform'",
        )
    return OwnerAssignArgs(
        owner=match["owner"],
        override=bool(re.search(r"\b(?:override|overriding|even if tagged|always)\b", text, re.I)),
        **_what(match["what"], context),
    )


def _last_30_days(context: SkillContext) -> tuple[datetime, datetime]:
    end = datetime.combine(context.now.date(), datetime.min.time())
    return end - timedelta(days=30), end


def _matched_spend(context: SkillContext, args: OwnerAssignArgs) -> list[tuple[str, float]]:
    """Last 30 days' spend the new rule would match, by its current owner."""
    rule = allocation.Rule(id=0, position=0, owner=args.owner, **args.criteria)
    start, end = _last_30_days(context)
    current = allocation.load_allocation(context.engine, context.costs)
    joins = allocation.TagJoins()
    owner = current.expression(joins).label("owner")
    statement = (
        select(owner, func.coalesce(func.sum(items.c.effective_cost), 0.0))
        .select_from(joins.source)
        .where(
            items.c.charge_period_start >= start,
            items.c.charge_period_start < end,
            rule.condition(joins),
        )
        .group_by(owner)
        .order_by(func.sum(items.c.effective_cost).desc())
    )
    with context.costs.connect() as connection:
        return [(name, float(amount)) for name, amount in connection.execute(statement)]


def plan_assign(context: SkillContext, args: OwnerAssignArgs) -> ActionPlan:
    """One new rule, with the last 30 days' spend it matches by current owner."""
    matched = _matched_spend(context, args)
    total = sum(amount for _, amount in matched)
    where = describe_criteria(args.criteria)
    now_owned = ", ".join(f"{name} {format_money(amount)}" for name, amount in matched[:5])
    tier = "override (wins over owner tags)" if args.override else "rule (untagged spend only)"
    return ActionPlan(
        summary=f"Allocate spend where {where} to {args.owner}",
        targets=(
            {
                "id": f"rule: {where}",
                "owner": args.owner,
                "kind": tier,
                "last_30_days": round(total, 2),
            },
        ),
        impact=f"matches {format_money(total)} of the last 30 days' spend"
        + (f", now owned by: {now_owned}" if now_owned else ""),
        impact_amount=round(total, 2),
    )


@SKILLS.skill(
    name="owner_assign",
    args=OwnerAssignArgs,
    parse_text=parse_assign_text,
    command="assign",
    examples=(
        "assign the ml-dev account to ml-platform",
        "assign service Amazon Bedrock to data",
        "allocate resource i-0abc* to search, override tags",
    ),
    triggers=(r"\b(assign|allocate|attribute)\b.+\bto\b.*",),
    risk="write",
    permission=FINOPS,
    plan=plan_assign,
    policy=RULE_POLICY,
)
def owner_assign(context: SkillContext, args: OwnerAssignArgs) -> Reply:
    """Assign spend (an account, service, resource, tag...) to an owner with an allocation rule.

    The rule applies at once to all loaded data and to new data, without re-ingesting. By
    default it covers spend without an owner tag (team, owner, cost-center); with `override`
    it wins over the tag. Rules matching only an account are that account's default owner,
    tried after all other rules.
    """
    with context.engine.begin() as connection:
        rule = allocation.add_rule(
            connection,
            owner=args.owner,
            criteria=args.criteria,
            override=args.override,
            project=args.project,
            by=context.user,
            at=context.now,
        )
        context.audit(
            connection,
            event="allocation_changed",
            skill="owner_assign",
            detail={"added": rule.as_dict()},
        )
    return Reply(
        text=f"Rule #{rule.id} ({rule.kind}): spend where {rule.describe()} belongs to "
        f"{rule.owner}. It applies to all loaded data and to new data.",
        data={"rule": rule.as_dict()},
    )


class RuleRemoveArgs(BaseModel):
    """Arguments of owner_rule_remove."""

    rule_id: int = Field(ge=1, description="The rule's number, as 'list rules' shows it.")


def parse_remove_text(text: str, context: SkillContext) -> RuleRemoveArgs:
    """'remove rule 3', 'delete allocation rule #3'."""
    match = re.search(r"\brule\s*#?(\d+)", text, re.I)
    if not match:
        raise UserError("Which rule?", "e.g. 'remove rule 3' (see 'list rules')")
    return RuleRemoveArgs(rule_id=int(match[1]))


def plan_remove(context: SkillContext, args: RuleRemoveArgs) -> ActionPlan:
    """Deleting one rule."""
    with context.engine.connect() as connection:
        rule = next((r for r in allocation.list_rules(connection) if r.id == args.rule_id), None)
    if rule is None:
        # Nothing to plan: the handler says so, and removing a rule twice is not an error.
        return ActionPlan(summary=f"Remove allocation rule #{args.rule_id} (no such rule)")
    return ActionPlan(
        summary=f"Remove allocation rule #{rule.id} ({rule.describe()} -> {rule.owner})",
        targets=({"id": f"rule #{rule.id}", "owner": rule.owner, "match": rule.describe()},),
        impact="the matching spend falls back to its tag, a later rule or (unallocated)",
    )


@SKILLS.skill(
    name="owner_rule_remove",
    args=RuleRemoveArgs,
    parse_text=parse_remove_text,
    command="unassign",
    examples=("remove allocation rule 1", "delete rule #2"),
    triggers=(r"\b(remove|delete|drop)\s+(?:the\s+)?(?:allocation\s+)?rule\b.*",),
    risk="write",
    permission=FINOPS,
    plan=plan_remove,
    policy=RULE_POLICY,
)
def owner_rule_remove(context: SkillContext, args: RuleRemoveArgs) -> Reply:
    """Remove an allocation rule; its spend falls back to tags, other rules or unallocated."""
    with context.engine.begin() as connection:
        rule = allocation.remove_rule(connection, args.rule_id)
        if rule is None:
            return Reply(
                text=f"There is no allocation rule #{args.rule_id}; nothing was removed.",
                data={"removed": None},
            )
        context.audit(
            connection,
            event="allocation_changed",
            skill="owner_rule_remove",
            detail={"removed": rule.as_dict()},
        )
    return Reply(text=f"Rule #{rule.id} removed ({rule.describe()} -> {rule.owner}).")


class NoArgs(BaseModel):
    """No arguments."""


@SKILLS.skill(
    name="owner_rules",
    args=NoArgs,
    parse_text=lambda text, context: NoArgs(),
    command="rules",
    examples=("list rules", "show the allocation rules"),
    triggers=(r"\b(list|show|what are)\b.*\b(allocation\s+)?rules\b",),
)
def owner_rules(context: SkillContext, args: NoArgs) -> Reply:
    """List the allocation rules in the order they are tried, and the owner tags used."""
    current = allocation.load_allocation(context.engine, context.costs)
    rules = current.ordered()
    tags = ", ".join(current.tag_keys) or "none in the data"
    text = (
        f"{len(rules)} allocation rule{'s' if len(rules) != 1 else ''}. Order: overrides, then the "
        f"owner tag ({tags}), then rules, then account defaults; else {UNALLOCATED}."
    )
    table = (
        Table(
            ["Rule", "Kind", "Match", "Owner", "Added by", "Added"],
            [
                [
                    f"#{rule.id}",
                    rule.kind,
                    rule.describe(),
                    rule.owner,
                    rule.created_by,
                    f"{rule.created_at:%Y-%m-%d}" if rule.created_at else "",
                ]
                for rule in rules
            ],
        )
        if rules
        else None
    )
    return Reply(
        text=text if rules else text + " Add one with 'assign the ml-dev account to ml-platform'.",
        table=table,
        data={
            "rules": [rule.as_dict() for rule in rules],
            "owner_tag_keys": list(current.tag_keys),
        },
    )


class OwnerShowArgs(BaseModel):
    """Arguments of owner_show."""

    resource: str = Field(description="A resource id or name, e.g. i-0abc123.")


def parse_show_text(text: str, context: SkillContext) -> OwnerShowArgs:
    """'who owns i-0abc...?'."""
    match = re.search(r"\bowns?\s+(?:the\s+)?(?:resource\s+|instance\s+)?([^\s?]+)", text, re.I)
    if not match:
        raise UserError("Which resource?", "e.g. 'who owns i-0abc123?'")
    return OwnerShowArgs(resource=match[1].strip("'\"`"))


@SKILLS.skill(
    name="owner_show",
    args=OwnerShowArgs,
    parse_text=parse_show_text,
    command="owner",
    examples=("who owns i-0df689175f93445c1?", "who owns the resource i-0d1d397b8aa3276a7"),
    triggers=(r"\bwho\s+owns\b.*|\bowner\s+of\b.*",),
)
def owner_show(context: SkillContext, args: OwnerShowArgs) -> Reply:
    """Who owns a resource, how that was decided (tag, rule, account default) and its cost."""
    found = allocation.resource_owners(context.engine, args.resource, costs=context.costs)
    if not found:
        raise UserError(
            f"No line items for resource '{args.resource}'", "give a resource id as billed"
        )
    latest = found[0]
    recipient = allocation.resolve_recipient(context.engine, owner=latest.owner)
    contact = f" Contact: {recipient.contact}." if recipient.contact else ""
    text = (
        f"{latest.resource} is owned by {latest.owner} (from {latest.via}).{contact}"
        if latest.owner != UNALLOCATED
        else f"{latest.resource} has no owner: no owner tag and no allocation rule matches it. "
        f"Assign it with 'assign resource {latest.resource} to TEAM'."
    )
    table = Table(
        ["Resource", "Owner", "From", "Last seen", "Amount"],
        [
            [row.resource, row.owner, row.via, f"{row.last_seen:%Y-%m-%d}", round(row.amount, 2)]
            for row in found
        ],
        frozenset({4}),
    )
    return Reply(
        text=text,
        table=table,
        context="Metric: EffectiveCost (amortized), all loaded data",
        data={
            "resource": latest.resource,
            "owner": latest.owner,
            "via": latest.via,
            "contact": recipient.contact,
            "rows": [
                {
                    "resource": row.resource,
                    "owner": row.owner,
                    "via": row.via,
                    "last_seen": row.last_seen.isoformat(),
                    "amount": round(row.amount, 6),
                }
                for row in found
            ],
        },
    )


class UnallocatedArgs(BaseModel):
    """Arguments of owner_unallocated."""

    period: str = Field("last 30 days", description="A time phrase, as in spend_query.")
    group_by: list[str] = Field(
        default_factory=lambda: ["provider", "sub_account", "service"],
        description="Break the unallocated spend down by these dimensions.",
    )


def parse_unallocated_text(text: str, context: SkillContext) -> UnallocatedArgs:
    """'show unallocated spend last month'."""
    phrase, _ = take_period(text, context.now.date())
    return UnallocatedArgs(period=phrase) if phrase else UnallocatedArgs()


@SKILLS.skill(
    name="owner_unallocated",
    args=UnallocatedArgs,
    parse_text=parse_unallocated_text,
    command="unallocated",
    examples=("show unallocated spend last month", "unallocated costs this month"),
    triggers=(r"\b(unallocated|unowned|untagged|without an? owner)\b.*",),
)
def owner_unallocated(context: SkillContext, args: UnallocatedArgs) -> Reply:
    """Spend with no owner (no owner tag, no allocation rule), by account and service."""
    period = parse_period(args.period, context.now.date())
    currency, _ = context.vocabulary.choose_currency(None)
    groups = tuple(dict.fromkeys(resolve_dimension(name, context) for name in args.group_by))
    unallocated = (Filter(OWNER, (UNALLOCATED,)),)
    base = SpendQuery(period.start_datetime(), period.end_exclusive(), currency=currency)
    total = run_spend(context.engine, base, context.costs)[0].amount
    query = SpendQuery(
        base.start, base.end, currency=currency, group_by=groups, filters=unallocated
    )
    rows = run_spend(context.engine, query, context.costs)
    amount = sum(row.amount for row in rows)
    share = amount / total * 100 if total else 0.0
    text = (
        f"Unallocated spend for {period.label}: {format_money(amount, currency)} "
        f"({share:.1f}% of {format_money(total, currency)})."
    )
    if rows:
        text += " Assign it with e.g. 'assign the <account> account to <team>'."
    table = Table(
        [*(dimension_label(name) for name in groups), "Amount", "Share"],
        [
            [*row.key, round(row.amount, 2), f"{row.amount / total * 100:.1f}%" if total else ""]
            for row in rows[:25]
        ],
        frozenset({len(groups)}),
        currency,
    )
    return Reply(
        text=text,
        table=table if rows else None,
        context=f"Metric: EffectiveCost (amortized) · Period: {period.start:%Y-%m-%d} to "
        f"{period.end:%Y-%m-%d} · Currency: {currency}",
        data={
            "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "currency": currency,
            "total": round(total, 6),
            "unallocated": round(amount, 6),
            "share_pct": round(share, 2),
            "rows": [
                {
                    "key": dict(zip(groups, row.key, strict=True)),
                    "amount": round(row.amount, 6),
                }
                for row in rows
            ],
            "sql": render_sql(context.engine, query, context.costs),
        },
    )


class CoverageArgs(BaseModel):
    """Arguments of owner_coverage."""

    months: int = Field(6, ge=1, le=24, description="How many months of trend, this one included.")


@SKILLS.skill(
    name="owner_coverage",
    args=CoverageArgs,
    parse_text=lambda text, context: CoverageArgs(),
    command="coverage",
    examples=("allocation coverage", "how much of our spend has an owner?"),
    triggers=(
        r"\b(allocation|ownership|owner|tag(ging)?)\s+coverage\b.*",
        r"\bspend\s+(?:has|have)\s+an?\s+owner\b",
    ),
)
def owner_coverage(context: SkillContext, args: CoverageArgs) -> Reply:
    """Allocation coverage: the share of spend that has an owner, month by month."""
    currency, _ = context.vocabulary.choose_currency(None)
    today = context.now.date()
    first = today.replace(day=1)
    for _ in range(args.months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    query = SpendQuery(
        datetime.combine(first, datetime.min.time()),
        end,
        currency=currency,
        group_by=("month", OWNER),
    )
    months: dict[str, list[float]] = {}
    for row in run_spend(context.engine, query, context.costs):
        month, owner = row.key
        totals = months.setdefault(month, [0.0, 0.0])
        totals[0] += row.amount
        if owner != UNALLOCATED:
            totals[1] += row.amount
    trend = [
        {
            "month": month,
            "total": round(total, 6),
            "allocated": round(allocated, 6),
            "unallocated": round(total - allocated, 6),
            "coverage_pct": round(allocated / total * 100, 2) if total else None,
        }
        for month, (total, allocated) in sorted(months.items())
    ]
    if not trend:
        return Reply(text="No spend loaded for those months.", data={"months": []})
    latest = trend[-1]
    text = f"Allocation coverage for {latest['month']}: {latest['coverage_pct']:.1f}% of spend has an owner"
    if len(trend) > 1 and trend[0]["coverage_pct"] is not None:
        text += f" (was {trend[0]['coverage_pct']:.1f}% in {trend[0]['month']})"
    text += f"; {format_money(latest['unallocated'], currency)} unallocated."
    table = Table(
        ["Month", "Total", "Allocated", "Unallocated", "Coverage"],
        [
            [
                item["month"],
                round(item["total"], 2),
                round(item["allocated"], 2),
                round(item["unallocated"], 2),
                f"{item['coverage_pct']:.1f}%" if item["coverage_pct"] is not None else "",
            ]
            for item in trend
        ],
        frozenset({1, 2, 3}),
        currency,
    )
    return Reply(
        text=text,
        table=table,
        context=f"Metric: EffectiveCost (amortized) · Owner: tag, then allocation rules · "
        f"Currency: {currency}",
        data={
            "months": trend,
            "currency": currency,
            "sql": render_sql(context.engine, query, context.costs),
        },
    )


class ShowbackArgs(BaseModel):
    """Arguments of owner_showback."""

    period: str = Field("last month", description="A time phrase, as in spend_query.")


def parse_showback_text(text: str, context: SkillContext) -> ShowbackArgs:
    """'showback last month', 'spend by owner with shared costs split this month'."""
    phrase, _ = take_period(text, context.now.date())
    return ShowbackArgs(period=phrase) if phrase else ShowbackArgs()


@SKILLS.skill(
    name="owner_showback",
    args=ShowbackArgs,
    parse_text=parse_showback_text,
    command="showback",
    examples=("showback last month", "spend by owner with shared costs split this month"),
    triggers=(r"\b(showback|shared costs?\s+split|split\s+shared\s+costs?)\b.*",),
)
def owner_showback(context: SkillContext, args: ShowbackArgs) -> Reply:
    """Spend by owner with shared costs (platform, support, data transfer) split out as configured.

    Each owner's direct spend, plus its part of the shared pools (split evenly, by fixed
    percentages or in proportion to spend, see ``spendbot owners split``); the totals add up
    to the same total spend.
    """
    period = parse_period(args.period, context.now.date())
    currency, _ = context.vocabulary.choose_currency(None)
    query = SpendQuery(
        period.start_datetime(), period.end_exclusive(), currency=currency, group_by=(OWNER,)
    )
    totals = {row.key[0]: row.amount for row in run_spend(context.engine, query, context.costs)}
    with context.engine.connect() as connection:
        splits = allocation.list_splits(connection)
    result = allocation.apply_splits(totals, splits)
    total = sum(totals.values())
    ordered = sorted(result.items(), key=lambda item: -item[1]["total"])
    rows = [
        [
            owner,
            round(figures["direct"], 2),
            round(figures["shared"], 2),
            round(figures["total"], 2),
            f"{figures['total'] / total * 100:.1f}%" if total else "",
        ]
        for owner, figures in ordered
    ]
    pools = ", ".join(f"{split.pool} ({split.method})" for split in splits) or "none configured"
    return Reply(
        text=f"Showback for {period.label}: {format_money(total, currency)} across "
        f"{sum(1 for _, f in ordered if abs(f['total']) >= 0.005)} owners. Shared pools: {pools}.",
        table=Table(
            ["Owner", "Direct", "Shared", "Total", "Share"], rows, frozenset({1, 2, 3}), currency
        ),
        context=f"Metric: EffectiveCost (amortized) · Period: {period.start:%Y-%m-%d} to "
        f"{period.end:%Y-%m-%d} · Currency: {currency}",
        data={
            "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "currency": currency,
            "total": round(total, 6),
            "owners": {
                owner: {key: round(value, 6) for key, value in figures.items()}
                for owner, figures in ordered
            },
            "splits": [
                {
                    "pool": s.pool,
                    "method": s.method,
                    "owners": list(s.owners),
                    "percentages": dict(s.percentages),
                }
                for s in splits
            ],
            "sql": render_sql(context.engine, query, context.costs),
        },
    )
