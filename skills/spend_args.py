"""Arguments of the spend skill, and how dimension names people type map onto the store's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from skills.errors import UserError
from storage.allocation import owner_names
from storage.costs import (
    DIMENSIONS,
    OWNER,
    TAG_PREFIX,
    Filter,
    OwnerResolver,
    SpendQuery,
    dimension_label,
)
from storage.focus import COST_METRICS, METRIC_LABELS

if TYPE_CHECKING:
    from skills.periods import Period
    from skills.registry import SkillContext

DIMENSION_ALIASES = {
    "providers": "provider",
    "cloud": "provider",
    "clouds": "provider",
    "vendor": "provider",
    "services": "service",
    "category": "service_category",
    "categories": "service_category",
    "service category": "service_category",
    "account": "sub_account",
    "accounts": "sub_account",
    "sub account": "sub_account",
    "subaccount": "sub_account",
    "sub accounts": "sub_account",
    "billing account": "billing_account",
    "regions": "region",
    "resources": "resource",
    "instance": "resource",
    "instances": "resource",
    "skus": "sku",
    "model": "sku",
    "models": "sku",
    "instance type": "instance_type",
    "instance types": "instance_type",
    "gpu type": "instance_type",
    "family": "instance_type",
    "charge category": "charge_category",
    "charge type": "charge_category",
    "daily": "day",
    "days": "day",
    "weekly": "week",
    "weeks": "week",
    "monthly": "month",
    "months": "month",
    "pricing": "pricing_category",
}
TIME_DIMENSIONS = ("day", "week", "month")


class SpendArgs(BaseModel):
    """Arguments of spend_query."""

    period: str = Field(
        "last 30 days",
        description="Time phrase: 'today', 'yesterday', 'this week', 'last week', 'this month', "
        "'last month', 'this quarter', 'last quarter', 'Q3 2026', 'September', 'September 2026', "
        "'last 7 days', '2026-09-14', 'since 2026-09-01', 'from 2026-09-01 to 2026-09-30'. "
        "Dates are UTC and match ChargePeriodStart.",
    )
    metric: Literal["effective", "billed", "list", "contracted"] = Field(
        "effective",
        description="effective = EffectiveCost, amortized (default); billed = BilledCost, as "
        "invoiced; list = ListCost; contracted = ContractedCost.",
    )
    group_by: list[str] = Field(
        default_factory=list,
        description="Break down by these, in order: provider, service, service_category, "
        "sub_account, billing_account, region, resource, sku, instance_type, charge_category, "
        "owner (team from owner tags and allocation rules), day, week, month, or any tag key "
        "(team, project, env...).",
    )
    filters: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Keep only these values, keyed by dimension or tag key, e.g. "
        "{'service': ['ec2'], 'team': ['research']}. Common names such as ec2, s3, gcp, azure work.",
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict, description="Drop these values, keyed like filters."
    )
    gpu_only: bool = Field(
        False,
        description="Only GPU charges: AWS p/g/trn/inf, GCP a2/a3/g2, Azure NC/ND/NV instances "
        "and GPU-backed managed endpoints.",
    )
    compare: bool = Field(False, description="Compare with the previous comparable period.")
    top: int | None = Field(None, ge=1, le=100, description="Show only the N largest groups.")
    per_day: bool = Field(False, description="Also give the average per day.")
    currency: str | None = Field(
        None, description="Billing currency; default: the store's most common one."
    )


def resolve_dimension(name: str, context: SkillContext) -> str:
    """Turn a dimension as typed ("services", "team") into a dimension name or ``tag:<key>``."""
    wanted = name.strip().lower().replace("-", " ").replace("_", " ")
    if wanted.replace(" ", "_") in DIMENSIONS:
        return wanted.replace(" ", "_")
    if wanted.startswith(TAG_PREFIX):
        wanted = wanted.removeprefix(TAG_PREFIX).strip()
    keys = {key.replace("_", " ").replace("-", " "): key for key in context.vocabulary.tag_keys()}
    if wanted in keys:
        return TAG_PREFIX + keys[wanted]
    if wanted.endswith("s") and wanted[:-1] in keys:
        return TAG_PREFIX + keys[wanted[:-1]]
    if wanted in DIMENSION_ALIASES:
        return DIMENSION_ALIASES[wanted]
    choices = [*DIMENSIONS, *context.vocabulary.tag_keys()[:12]]
    raise UserError(f"I can't break spend down by '{name}'", f"try one of: {', '.join(choices)}")


@dataclass(frozen=True)
class SpendScope:
    """What a spend question keeps while its period and grouping vary: metric, filters, owners."""

    metric: str
    currency: str | None
    filters: tuple[Filter, ...]
    gpu_only: bool
    owners: OwnerResolver | None
    other_currencies: tuple[str, ...] = ()
    """Currencies the store also holds, whose spend the answer leaves out."""

    def context_line(self, periods: str) -> str:
        """A reply's context: metric, `periods` (dates), filters and currency."""
        line = (
            f"Metric: {METRIC_LABELS[self.metric]} · Period: {periods} (UTC, by "
            f"ChargePeriodStart) · Filters: {describe_filters(self.filters, self.gpu_only)} · "
            f"Currency: {self.currency}"
        )
        if self.other_currencies:
            line += f" ({', '.join(self.other_currencies)} spend not included)"
        return line

    def as_data(self) -> dict[str, Any]:
        """The scope in a reply's data: metric and its column, currency, filters, GPU only."""
        return {
            "metric": self.metric,
            "metric_column": COST_METRICS[self.metric],
            "currency": self.currency,
            "filters": [
                {"dimension": f.dimension, "values": list(f.values), "exclude": f.exclude}
                for f in self.filters
            ],
            "gpu_only": self.gpu_only,
        }

    def query(self, period: Period, group_by: tuple[str, ...] = ()) -> SpendQuery:
        """The store query for `period`, grouped by `group_by`."""
        return SpendQuery(
            start=period.start_datetime(),
            end=period.end_exclusive(),
            metric=self.metric,
            currency=self.currency,
            group_by=group_by,
            filters=self.filters,
            gpu_only=self.gpu_only,
            owners=self.owners,
        )


def resolve_filters(
    filters: dict[str, list[str]], exclude: dict[str, list[str]], context: SkillContext
) -> tuple[Filter, ...]:
    """Store filters for what a user typed: dimensions and values resolved, aliases applied."""
    resolved: list[Filter] = []
    for excluded, given in ((False, filters), (True, exclude)):
        for name, values in given.items():
            dimension = resolve_dimension(name, context)
            if dimension in TIME_DIMENSIONS:
                raise UserError(f"'{name}' is a time unit", "use the period to pick dates")
            if dimension == OWNER:
                targets = tuple(resolve_owner(value, context) for value in values)
            else:
                targets = tuple(context.vocabulary.resolve(dimension, value) for value in values)
            resolved.append(Filter(dimension, targets, excluded))
    return tuple(resolved)


def resolve_owner(text: str, context: SkillContext) -> str:
    """An owner as typed, matched to a known owner (tag values, rule owners, unallocated)."""
    known = owner_names(context.engine, context.costs)
    wanted = text.strip().lower()
    if wanted in ("unallocated", "none", "nobody", "no owner"):
        wanted = "(unallocated)"
    exact = [name for name in known if name.lower() == wanted]
    partial = [name for name in known if wanted and wanted in name.lower()]
    if exact or len(partial) == 1:
        return (exact or partial)[0]
    problem = "matches several owners" if partial else "is not a known owner"
    raise UserError(f"'{text}' {problem}", f"try one of: {', '.join((partial or known)[:10])}")


def describe_filters(filters: tuple[Filter, ...], gpu_only: bool) -> str:
    """Filters as the context line of a reply states them, e.g. ``service = Amazon S3``."""
    parts = [
        f"{dimension_label(f.dimension).lower()} {'not ' if f.exclude else ''}in {', '.join(f.values)}"
        if len(f.values) > 1
        else f"{dimension_label(f.dimension).lower()} {'≠' if f.exclude else '='} {f.values[0]}"
        for f in filters
    ]
    if gpu_only:
        parts.append("GPU charges only")
    return "; ".join(parts) if parts else "none"
