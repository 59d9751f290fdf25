"""Owners of spend: allocation rules (virtual tags) resolved at query time, and owner contacts.

The owner of a line item is one SQL CASE expression, so rules apply to all data already loaded
and to new data without re-ingesting, and any owner figure is reproducible by one statement:

1. override rules, in position order (they win over a native tag);
2. the line item's native owner tag, the first of `OWNER_TAG_KEYS` it carries (tag keys are
   lower-cased at ingest, so ``Team`` and ``team`` are one key);
3. other rules, in position order;
4. account defaults: rules that match only on provider, billing account or sub account;
5. otherwise ``(unallocated)``.

Every line item gets exactly one owner, so owner totals always sum to the ungrouped total.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from storage.models import allocation_rules, cost_splits, cost_tags, owners
from storage.models import cost_line_items as items

UNALLOCATED = "(unallocated)"
OWNER_TAG_KEYS = ("team", "owner", "cost-center", "cost_center", "costcenter")
"""Tag keys that name an owner natively, most trusted first (aliases across clouds)."""

ACCOUNT_FIELDS = ("provider", "billing_account", "sub_account")
MATCH_FIELDS = (
    "provider",
    "billing_account",
    "sub_account",
    "service",
    "region",
    "sku",
    "resource",
    "tag_key",
    "tag_value",
)
"""What a rule can match on; all the given ones must hold."""

TagColumn = Callable[[str], ColumnElement]


@dataclass(frozen=True)
class Rule:
    """One allocation rule as stored."""

    id: int
    position: int
    owner: str
    project: str | None = None
    provider: str | None = None
    billing_account: str | None = None
    sub_account: str | None = None
    service: str | None = None
    region: str | None = None
    sku: str | None = None
    resource: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None
    override: bool = False
    created_by: str = ""
    created_at: datetime | None = None

    @property
    def criteria(self) -> dict[str, str]:
        """The match criteria that are set."""
        return {name: value for name in MATCH_FIELDS if (value := getattr(self, name))}

    @property
    def tier(self) -> int:
        """0 override, 1 rule, 2 account default: the order tiers are tried in, after tags (0.5)."""
        if self.override:
            return 0
        return 2 if set(self.criteria) <= set(ACCOUNT_FIELDS) else 1

    @property
    def kind(self) -> str:
        """The tier in words."""
        return ("override", "rule", "account default")[self.tier]

    def describe(self) -> str:
        """The criteria in words, e.g. ``sub_account = ml-dev and service = Amazon S3``."""
        return describe_criteria(self.criteria)

    def condition(self, tag: TagColumn) -> ColumnElement[bool]:
        """Whether a line item matches every criterion (case-insensitive)."""
        parts: list[ColumnElement[bool]] = []
        for name, value in self.criteria.items():
            if name == "tag_value":
                continue
            if name == "tag_key":
                column = tag(value.lower())
                parts.append(
                    _matches(column, self.tag_value)
                    if self.tag_value
                    else and_(column.is_not(None), column != "")
                )
            else:
                parts.append(or_(*(_matches(column, value) for column in _COLUMNS[name])))
        return and_(*parts)

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready values."""
        return {
            "id": self.id,
            "position": self.position,
            "owner": self.owner,
            "project": self.project,
            "kind": self.kind,
            "criteria": self.criteria,
            "override": self.override,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


_COLUMNS: dict[str, tuple[ColumnElement, ...]] = {
    "provider": (items.c.provider_name,),
    "billing_account": (items.c.billing_account_id, items.c.billing_account_name),
    "sub_account": (items.c.sub_account_id, items.c.sub_account_name),
    "service": (items.c.service_name,),
    "region": (items.c.region_id, items.c.region_name),
    "sku": (items.c.sku_id,),
    "resource": (items.c.resource_id, items.c.resource_name),
}


def _matches(column: ColumnElement, value: str) -> ColumnElement[bool]:
    """Case-insensitive equality, or a glob (``*``, ``?``) match when `value` has wildcards."""
    lowered = value.lower()
    if "*" not in value and "?" not in value:
        return func.lower(column) == lowered
    pattern = (
        lowered.replace("\\", "\\\\")
        .replace("%", "\\%")
        .replace("_", "\\_")
        .replace("*", "%")
        .replace("?", "_")
    )
    return func.lower(column).like(pattern, escape="\\")


def describe_criteria(criteria: dict[str, str]) -> str:
    """Criteria in words, as a rule list shows them."""
    parts = []
    for name, value in criteria.items():
        if name == "tag_value":
            continue
        if name == "tag_key":
            parts.append(f"tag {value} = {criteria.get('tag_value') or '(any)'}")
        else:
            parts.append(f"{name.replace('_', ' ')} = {value}")
    return " and ".join(parts) or "everything"


@dataclass(frozen=True)
class Allocation:
    """The rules and owner tag keys in force: builds the owner of a line item as SQL."""

    rules: tuple[Rule, ...] = ()
    tag_keys: tuple[str, ...] = OWNER_TAG_KEYS

    def ordered(self) -> list[Rule]:
        """Rules in the order they are tried: overrides, rules, account defaults; by position."""
        return sorted(self.rules, key=lambda rule: (rule.tier, rule.position, rule.id))

    def _whens(self, tag: TagColumn, label: Callable[[Rule | str], str]) -> list[tuple]:
        ordered = self.ordered()
        whens: list[tuple] = [
            (rule.condition(tag), label(rule)) for rule in ordered if rule.tier == 0
        ]
        for key in self.tag_keys:
            column = tag(key)
            whens.append((and_(column.is_not(None), column != ""), label(key)))
        whens += [(rule.condition(tag), label(rule)) for rule in ordered if rule.tier > 0]
        return whens

    def expression(self, tag: TagColumn) -> ColumnElement:
        """The owner of a line item: the first of overrides, owner tags, rules, account defaults."""
        whens = self._whens(
            tag, lambda source: literal(source.owner) if isinstance(source, Rule) else tag(source)
        )
        return case(*whens, else_=literal(UNALLOCATED)) if whens else literal(UNALLOCATED)

    def source_expression(self, tag: TagColumn) -> ColumnElement:
        """Where the owner came from: ``tag team``, ``rule #3``, ``account default rule #2``."""
        whens = self._whens(
            tag,
            lambda source: literal(
                f"{source.kind} #{source.id}" if isinstance(source, Rule) else f"tag {source}"
            ),
        )
        return case(*whens, else_=literal("no tag or rule")) if whens else literal("none")


class TagJoins:
    """Line items outer-joined once per tag key used, as spend_statement does."""

    def __init__(self) -> None:
        self.source: Any = items
        self._columns: dict[str, ColumnElement] = {}

    def __call__(self, key: str) -> ColumnElement:
        """The value column of tag `key`, joined on first use."""
        if key not in self._columns:
            alias = cost_tags.alias(f"otag_{len(self._columns)}")
            self.source = self.source.outerjoin(
                alias, and_(alias.c.line_item_id == items.c.id, alias.c.key == key)
            )
            self._columns[key] = alias.c.value
        return self._columns[key]


def _rule(row: Any) -> Rule:
    names = {field.name for field in fields(Rule)}
    return Rule(**{name: value for name, value in row._mapping.items() if name in names})


def list_rules(connection: Connection) -> list[Rule]:
    """Every rule, in the order they are tried."""
    rows = connection.execute(select(allocation_rules)).all()
    return Allocation(tuple(_rule(row) for row in rows)).ordered()


def load_allocation(engine: Engine, costs: Engine | None = None) -> Allocation:
    """The allocation in force: all rules, and the owner tag keys the cost data holds.

    `costs` is where the line items are when not in the store (storage.engines).
    """
    with engine.connect() as connection:
        rules = tuple(list_rules(connection))
    with (costs or engine).connect() as connection:
        present = set(
            connection.execute(
                select(cost_tags.c.key).where(cost_tags.c.key.in_(OWNER_TAG_KEYS)).distinct()
            ).scalars()
        )
    return Allocation(rules, tuple(key for key in OWNER_TAG_KEYS if key in present))


def add_rule(
    connection: Connection,
    *,
    owner: str,
    criteria: dict[str, str],
    by: str,
    at: datetime,
    override: bool = False,
    project: str | None = None,
) -> Rule:
    """Append a rule after the existing ones; returns it as stored."""
    unknown = set(criteria) - set(MATCH_FIELDS)
    if unknown or not any(criteria.get(name) for name in MATCH_FIELDS if name != "tag_value"):
        raise ValueError(f"a rule needs criteria among {MATCH_FIELDS}, got {criteria!r}")
    position = connection.execute(
        select(func.coalesce(func.max(allocation_rules.c.position), 0))
    ).scalar_one()
    values = {
        "position": int(position) + 1,
        "owner": owner,
        "project": project,
        "override": override,
        "created_by": by,
        "created_at": at,
        **{name: value for name, value in criteria.items() if value},
    }
    rule_id = connection.execute(insert(allocation_rules).values(**values)).inserted_primary_key[0]
    row = connection.execute(select(allocation_rules).where(allocation_rules.c.id == rule_id)).one()
    return _rule(row)


def remove_rule(connection: Connection, rule_id: int) -> Rule | None:
    """Delete a rule; the rule as it was, or None when there is no such rule."""
    row = connection.execute(
        select(allocation_rules).where(allocation_rules.c.id == rule_id)
    ).first()
    if row is None:
        return None
    connection.execute(delete(allocation_rules).where(allocation_rules.c.id == rule_id))
    return _rule(row)


def owner_names(engine: Engine, costs: Engine | None = None) -> list[str]:
    """Every owner spend can have: owner tag values, rule owners, and ``(unallocated)``."""
    with (costs or engine).connect() as connection:
        tagged = set(
            connection.execute(
                select(cost_tags.c.value).where(cost_tags.c.key.in_(OWNER_TAG_KEYS)).distinct()
            ).scalars()
        )
    with engine.connect() as connection:
        ruled = connection.execute(select(allocation_rules.c.owner).distinct()).scalars()
        named = connection.execute(select(owners.c.name)).scalars()
        found = {*tagged, *ruled, *named}
    return [*sorted(value for value in found if value), UNALLOCATED]


# Owner contacts and the one owner-resolution path ------------------------------------------


def set_contact(connection: Connection, name: str, contact: str, *, by: str, at: datetime) -> None:
    """Set (or replace) the chat identity an owner is notified at."""
    changed = connection.execute(
        update(owners)
        .where(owners.c.name == name)
        .values(contact=contact, updated_by=by, updated_at=at)
    ).rowcount
    if not changed:
        connection.execute(
            insert(owners).values(name=name, contact=contact, updated_by=by, updated_at=at)
        )


def contacts(engine: Engine) -> dict[str, str]:
    """Every owner's chat identity, by owner name."""
    with engine.connect() as connection:
        return {
            name: contact
            for name, contact in connection.execute(select(owners.c.name, owners.c.contact))
        }


@dataclass(frozen=True)
class ResourceOwner:
    """The owner of a resource's line items, how it was found, and their recent cost."""

    resource: str
    owner: str
    via: str
    last_seen: datetime
    amount: float
    line_items: int


def resource_owners(
    engine: Engine,
    resource: str,
    since: datetime | None = None,
    allocation: Allocation | None = None,
    costs: Engine | None = None,
) -> list[ResourceOwner]:
    """Who owns the line items whose resource id or name is `resource`, most recent first.

    `costs` is where the line items are when not in the store `engine` (storage.engines).
    """
    allocation = allocation or load_allocation(engine, costs)
    joins = TagJoins()
    owner = allocation.expression(joins).label("owner")
    via = allocation.source_expression(joins).label("via")
    conditions = [
        or_(
            func.lower(items.c.resource_id) == resource.lower(),
            func.lower(items.c.resource_name) == resource.lower(),
        )
    ]
    if since is not None:
        conditions.append(items.c.charge_period_start >= since)
    statement = (
        select(
            func.coalesce(items.c.resource_id, items.c.resource_name).label("resource"),
            owner,
            via,
            func.max(items.c.charge_period_start).label("last_seen"),
            func.coalesce(func.sum(items.c.effective_cost), 0.0).label("amount"),
            func.count().label("line_items"),
        )
        .select_from(joins.source)
        .where(*conditions)
        .group_by(func.coalesce(items.c.resource_id, items.c.resource_name), owner, via)
        .order_by(func.max(items.c.charge_period_start).desc())
    )
    with (costs or engine).connect() as connection:
        return [
            ResourceOwner(
                row.resource,
                row.owner,
                row.via,
                row.last_seen,
                float(row.amount),
                int(row.line_items),
            )
            for row in connection.execute(statement)
        ]


@dataclass(frozen=True)
class Recipient:
    """Who to notify about something, and why them."""

    owner: str | None
    contact: str | None
    via: str


def resolve_recipient(
    engine: Engine,
    *,
    resource: str | None = None,
    owner: str | None = None,
    fallback: str | None = None,
    costs: Engine | None = None,
) -> Recipient:
    """The one owner-resolution path for notifications (anomalies, budgets, idle GPUs, digests).

    The owner is the resource's (its tag, then an allocation rule, then its account's default,
    as for spend), else `owner` when the caller already knows it (a budget's or a team's); the
    contact is that owner's chat identity, else `fallback` (a FinOps channel). `costs` is where
    the line items are when not in the store `engine` (storage.engines).
    """
    via = "given"
    if resource:
        found = resource_owners(engine, resource, costs=costs)
        if found and found[0].owner != UNALLOCATED:
            owner, via = found[0].owner, found[0].via
    if owner and owner != UNALLOCATED:
        contact = contacts(engine).get(owner)
        if contact:
            return Recipient(owner, contact, via)
        return Recipient(owner, fallback, f"{via}; owner has no contact, fallback")
    return Recipient(None, fallback, "no owner, fallback")


# Shared costs: one owner's spend split across others ---------------------------------------

SPLIT_METHODS = ("even", "fixed", "proportional")


@dataclass(frozen=True)
class Split:
    """A shared-cost pool and how it is shared.

    `even` and `proportional` share among `owners` (proportional: by their own spend; with no
    owners listed, among every other owner that has spend, unallocated excepted); `fixed` uses
    `percentages`, which must add up to 100.
    """

    pool: str
    method: str
    owners: tuple[str, ...] = ()
    percentages: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise ValueError(f"a split method is one of {', '.join(SPLIT_METHODS)}")
        if self.method == "fixed":
            if not self.percentages or abs(sum(p for _, p in self.percentages) - 100) > 1e-9:
                raise ValueError("fixed percentages must add up to 100")
            if any(p < 0 for _, p in self.percentages):
                raise ValueError("percentages cannot be negative")
        elif self.method == "even" and not self.owners:
            raise ValueError("an even split needs the owners to share among")
        if self.pool in self.owners or self.pool in dict(self.percentages):
            raise ValueError("a pool cannot share with itself")

    def weights(self, totals: dict[str, float]) -> dict[str, float]:
        """Each receiving owner's share (summing to 1), given the totals before this split."""
        if self.method == "fixed":
            return {owner: pct / 100 for owner, pct in self.percentages}
        owners = self.owners or tuple(
            owner
            for owner, amount in sorted(totals.items())
            if owner not in (self.pool, UNALLOCATED) and amount > 0
        )
        if self.method == "proportional":
            base = {owner: max(totals.get(owner, 0.0), 0.0) for owner in owners}
            whole = sum(base.values())
            if whole > 0:
                return {owner: amount / whole for owner, amount in base.items()}
        return {owner: 1 / len(owners) for owner in owners} if owners else {}


def apply_splits(totals: dict[str, float], splits: list[Split]) -> dict[str, dict[str, float]]:
    """Owner totals with shared pools split out: ``{owner: {"direct", "shared", "total"}}``.

    Splits apply in order, each on the totals left by the ones before. A pool's whole amount is
    handed out (the last receiver takes the rounding remainder), so the totals always add up to
    the same sum; a pool with nobody to share among keeps its spend.
    """
    current = dict(totals)
    shared: dict[str, float] = {}
    for split in splits:
        amount = current.get(split.pool, 0.0)
        weights = {o: w for o, w in split.weights(current).items() if w > 0}
        if not amount or not weights:
            continue
        receivers = list(weights)
        given = 0.0
        for index, owner in enumerate(receivers):
            part = amount - given if index == len(receivers) - 1 else amount * weights[owner]
            given += part
            current[owner] = current.get(owner, 0.0) + part
            shared[owner] = shared.get(owner, 0.0) + part
        current[split.pool] = 0.0
        shared[split.pool] = shared.get(split.pool, 0.0) - amount
    return {
        owner: {
            "direct": totals.get(owner, 0.0),
            "shared": shared.get(owner, 0.0),
            "total": current[owner],
        }
        for owner in current
    }


def list_splits(connection: Connection) -> list[Split]:
    """Every split, in the order they were set."""
    rows = connection.execute(select(cost_splits).order_by(cost_splits.c.id)).all()
    found = []
    for row in rows:
        shares = json.loads(row.shares_json)
        found.append(
            Split(
                row.pool,
                row.method,
                tuple(shares) if isinstance(shares, list) else (),
                tuple(shares.items()) if isinstance(shares, dict) else (),
            )
        )
    return found


def set_split(connection: Connection, split: Split, *, by: str, at: datetime) -> None:
    """Set (or replace) how a pool is shared."""
    shares = dict(split.percentages) if split.method == "fixed" else list(split.owners)
    connection.execute(delete(cost_splits).where(cost_splits.c.pool == split.pool))
    connection.execute(
        insert(cost_splits).values(
            pool=split.pool,
            method=split.method,
            shares_json=json.dumps(shares),
            created_by=by,
            created_at=at,
        )
    )
