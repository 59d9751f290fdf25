"""Daily cost series per level (provider, service, sub account, team, SKU, resource) for detection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Engine, func, select

from storage.costs import Filter, SpendQuery, spend_statement
from storage.models import cost_line_items as items

USAGE_CATEGORIES = ("Usage", "Purchase")
"""Charge categories that anomaly detection looks at: tax, credits and adjustments are not usage."""

TEAM_TAG = "tag:team"


@dataclass(frozen=True)
class Level:
    """One level of the cost hierarchy: the dimensions that key its series, most general first."""

    name: str
    keys: tuple[str, ...]
    rank: int  # lower is more specific; an alert names the most specific level that explains it

    @property
    def dimension(self) -> str:
        """The dimension this level is about (the last of its keys)."""
        return self.keys[-1]


LEVELS: tuple[Level, ...] = (
    Level("resource", ("provider", "service", "resource"), 0),
    Level("sku", ("provider", "service", "sku"), 1),
    Level("sub_account", ("provider", "sub_account"), 2),
    Level("team", (TEAM_TAG,), 3),
    Level("service", ("provider", "service"), 4),
    Level("provider", ("provider",), 5),
)
LEVELS_BY_NAME = {level.name: level for level in LEVELS}
LINEAGE_KEYS = ("provider", "service", "sub_account", TEAM_TAG, "sku", "resource")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _usage_query(
    start: date, end: date, currency: str | None, group_by: tuple[str, ...]
) -> SpendQuery:
    return SpendQuery(
        start=_day_start(start),
        end=_day_start(end + timedelta(days=1)),
        metric="effective",
        currency=currency,
        group_by=group_by,
        filters=(Filter("charge_category", USAGE_CATEGORIES),),
    )


def load_daily_costs(engine: Engine, start: date, end: date, currency: str | None) -> pd.DataFrame:
    """One SQL query: daily EffectiveCost of Usage and Purchase per line-item group.

    A long frame: ``day`` (a timestamp), every `LINEAGE_KEYS` dimension (``(none)`` for a missing
    value) and ``amount``; every level's series and the lineage are sums over it.
    """
    statement = spend_statement(_usage_query(start, end, currency, ("day", *LINEAGE_KEYS)))
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    width = 1 + len(LINEAGE_KEYS)
    frame = pd.DataFrame(
        [row[: width + 1] for row in rows], columns=["day", *LINEAGE_KEYS, "amount"]
    )
    frame["day"] = pd.to_datetime(frame["day"])
    frame["amount"] = frame["amount"].astype(float)
    return frame


def level_series(daily: pd.DataFrame, level: Level, start: date, end: date) -> pd.DataFrame:
    """A day-by-series frame of one level's costs; NaN before a series first appears.

    Columns are tuples of `level.keys` values; a day with no line items for a series that had
    appeared before counts as zero spend.
    """
    days = pd.date_range(start, end, freq="D")
    if daily.empty:
        return pd.DataFrame(index=days)
    wide = daily.pivot_table(
        index="day", columns=list(level.keys), values="amount", aggfunc="sum"
    ).reindex(days)
    wide.columns = [tuple(col) if isinstance(col, tuple) else (col,) for col in wide.columns]
    # Zero, not missing, once a series exists: an absent day is a day with no spend.
    seen = wide.notna().cumsum() > 0
    return wide.fillna(0.0).where(seen)


def lineage_costs(daily: pd.DataFrame) -> pd.DataFrame:
    """Cost per (provider, service, sub account, team, SKU, resource): how the levels nest."""
    return daily.groupby(list(LINEAGE_KEYS), sort=False, as_index=False)["amount"].sum()


def last_usage_day(engine: Engine, before: date) -> date | None:
    """The last day before `before` with any Usage or Purchase line item: where complete data ends."""
    statement = select(func.max(items.c.charge_period_start)).where(
        items.c.charge_category.in_(USAGE_CATEGORIES),
        items.c.charge_period_start < _day_start(before),
    )
    with engine.connect() as connection:
        last = connection.execute(statement).scalar()
    if last is None:
        return None
    if isinstance(last, str):  # SQLite without type information on an aggregate
        last = datetime.fromisoformat(last)
    return last.date()
