"""Idle GPUs in the digest: waste awaiting a decision, stops in the period, billed savings."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from skills.money import format_money
from skills.registry import SkillContext
from storage.actions import PENDING, list_actions
from storage.gpu_savings import Stop, daily_cost, list_stops

GPU_STOP = "gpu_stop"
BASELINE_DAYS = 7


def realized_saving(engine: Engine, stop: Stop, start: datetime, end: datetime) -> float | None:
    """Billed saving in [start, end): the week-before daily cost minus each later billed day's.

    Days from the one after the stop count (the stop day is billed in part); None when the
    week before or the days after have no billing rows yet.
    """
    day = stop.stopped_at.replace(hour=0, minute=0, second=0, microsecond=0)
    before = daily_cost(engine, stop.instance_id, day - timedelta(days=BASELINE_DAYS), day)
    after = daily_cost(engine, stop.instance_id, max(day + timedelta(days=1), start), end)
    if not before or not after:
        return None
    baseline = sum(before.values()) / BASELINE_DAYS
    return sum(baseline - cost for cost in after.values())


def idle_gpu_summary(
    context: SkillContext, start: datetime, end: datetime, currency: str, owner: str | None
) -> dict | None:
    """Waste of machines in pending stop requests, stops in [start, end), what they saved.

    Only `owner`'s machines when given; None when there is nothing to say.
    """
    waiting = [
        target
        for action in list_actions(context.engine, states=(PENDING,), limit=1000)
        if action.skill == GPU_STOP and action.expires_at > context.now
        for target in action.targets
        if target.get("currency") == currency and owner in (None, target.get("owner"))
    ]
    stops = [
        stop
        for stop in list_stops(context.engine)
        if stop.currency == currency and owner in (None, stop.owner) and stop.stopped_at < end
    ]
    stopped = [stop for stop in stops if stop.stopped_at >= start]
    if not waiting and not stops:
        return None
    realized = [realized_saving(context.costs, stop, start, end) for stop in stops]
    return {
        "wasted_per_day": round(sum(target["daily_cost"] or 0 for target in waiting), 2),
        "waiting": len({target["id"] for target in waiting}),
        "stopped": len(stopped),
        "saving_per_day": round(sum(stop.hourly_cost * 24 for stop in stopped), 2),
        "realized": round(sum(amount for amount in realized if amount is not None), 2),
    }


def idle_gpu_line(summary: dict, currency: str, period_label: str) -> str:
    """The digest's line: wasted now, stopped and saving, realized in the period."""
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    return (
        f"Idle GPUs: {money(summary['wasted_per_day'])}/day wasted now; stopped "
        f"{summary['stopped']}, saving {money(summary['saving_per_day'])}/day; realized "
        f"{money(summary['realized'])} {period_label}."
    )
