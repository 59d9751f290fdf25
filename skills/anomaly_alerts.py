"""Anomaly alerts for channels: which detected anomalies to post or update, and their replies."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from skills.anomalies import describe_alert, driver_label, run_detection, series_key
from skills.aws_anomalies import aws_anomalies, describe, forward_feedback, matching
from skills.detection import Alert, DetectorParams
from skills.errors import UserError
from skills.money import format_money
from skills.periods import parse_period
from skills.registry import SkillContext
from skills.replies import Reply, Table
from storage import anomaly_alerts as store
from storage import audit, roles
from storage.allocation import (
    UNALLOCATED,
    Allocation,
    Recipient,
    load_allocation,
    resolve_recipient,
)
from storage.connectors.base import ConnectorError
from storage.cost_series import LEVELS_BY_NAME, Level
from storage.costs import NONE_LABEL, OWNER, Filter, SpendQuery, run_spend

log = logging.getLogger(__name__)

FEEDBACK_ROLE = "finops"
"""Besides the owner of an alert's spend, who may give feedback on it."""
OWNER_QUESTION = re.compile(r"\bwho\b.*\b(owns?|owner|responsible)\b", re.IGNORECASE)
RESOURCES_QUESTION = re.compile(r"\bresources?\b", re.IGNORECASE)
SCAN_PERIOD = "last 30 days"
"""Days each scan checks: an anomaly keeps its root cause (and message) while it persists."""
FEEDBACK_LABELS = {
    "expected": "Expected",
    "planned": "Planned",
    "not_an_issue": "Not an issue",
    "snooze": "Snooze 7 days",
}


@dataclass(frozen=True)
class Notice:
    """An alert to post (`store.NEW`) or whose message to update (`store.PERSISTING`)."""

    kind: str
    state: store.AlertState
    reply: Reply


def cause_key(alert: Alert) -> str:
    """The episode within the series: its kind and first day."""
    return f"{alert.episode.kind}:{alert.episode.start.isoformat()}"


def scan(context: SkillContext, params: DetectorParams | None = None) -> list[Notice]:
    """Detect anomalies now and record them; the ones to post or update, worst first."""
    period = parse_period(SCAN_PERIOD, context.now.date())
    currency, _ = context.vocabulary.choose_currency(None)
    detection = run_detection(context, period, params or DetectorParams(), currency)
    theirs, _ = aws_anomalies(context.settings, period.start, period.end)
    notices = []
    for alert in alerts_with_owners(context.engine, detection.alerts, context.costs):
        owner = alert_owner(context.engine, alert.as_dict())
        matched = matching(alert.as_dict(), theirs)
        detail = {
            "alert": alert.as_dict(),
            "driver": driver_label(alert),
            "text": describe_alert(alert, currency),
            "currency": currency,
            "aws": matched.as_dict() if matched else None,
            "contact": owner.contact,
            "owner_via": owner.via,
        }
        kind, state = store.observe(
            context.engine, series_key(alert), cause_key(alert), detail, context.now
        )
        if kind != store.QUIET and state is not None:
            notices.append(Notice(kind, state, alert_reply(state)))
    return notices


def alert_reply(state: store.AlertState) -> Reply:
    """One anomaly as a reply: headline, one-row table, when it was seen, and its state."""
    detail = state.alert
    alert, currency = detail["alert"], detail["currency"]
    dates = (
        alert["date"]
        if alert["date"] == alert["end_date"]
        else f"{alert['date']}..{alert['end_date']}"
    )
    table = Table(
        ["Dates", "Driver", "Service", "Owner", "Expected", "Actual", "Impact"],
        [
            [
                dates,
                detail["driver"],
                alert["service"] or "",
                alert["owner"] or "",
                alert["expected"],
                alert["actual"],
                alert["impact"],
            ]
        ],
        frozenset({4, 5, 6}),
        currency,
    )
    seen = f"First detected {state.first_detected:%Y-%m-%d %H:%M} UTC"
    if state.last_seen != state.first_detected:
        seen += f", still seen {state.last_seen:%Y-%m-%d %H:%M} UTC"
    impact = format_money(abs(alert["impact"]), currency)
    text = f"Cost anomaly: {detail['text']}"
    if detail.get("aws"):
        text += f"\nAlso reported by {describe(detail['aws'], currency)}."
    return Reply(
        text=text,
        table=table,
        context=f"{seen} · impact {impact} · {_status_words(state)}",
        data={
            "anomaly_alert": {
                "id": state.id,
                "status": state.status,
                "feedback": state.feedback,
                "feedback_by": state.feedback_by,
            },
            "alerts": [alert],
            "currency": currency,
        },
    )


def alerts_with_owners(
    engine: Engine, alerts: Sequence[Alert], costs: Engine | None = None
) -> list[Alert]:
    """`alerts` with their owners, as spend by owner resolves them; None when unallocated.

    An alert's owner is the owner (tag, then allocation rule, then account default) holding at
    least half of the spend over its series and days. One grouped query per level, however many
    alerts there are; the allocation rules are read once, from the store `engine`. `costs` is
    where the line items are when not in the store (storage.engines).
    """
    allocation = load_allocation(engine, costs)
    by_level: dict[str, list[int]] = defaultdict(list)
    for index, alert in enumerate(alerts):
        by_level[alert.level.name].append(index)
    owners: dict[int, str | None] = {}
    for name, indexes in by_level.items():
        level = LEVELS_BY_NAME[name]
        chosen = [alerts[index] for index in indexes]
        spend = _owner_spend(costs or engine, level, chosen, allocation)
        for index in indexes:
            owners[index] = _majority_owner(spend, level, alerts[index])
    return [replace(alert, owner=owners[index]) for index, alert in enumerate(alerts)]


def _owner_spend(
    engine: Engine, level: Level, alerts: list[Alert], allocation: Allocation
) -> pd.DataFrame:
    """Spend by level keys, day and owner over the alerts' days, for the series they name."""
    filters = []
    for position, dimension in enumerate(level.keys):
        values = {alert.episode.series[position] for alert in alerts}
        if NONE_LABEL not in values:  # `(none)` in an alert matches every value
            filters.append(Filter(dimension, tuple(sorted(values))))
    start = datetime.combine(min(alert.episode.start for alert in alerts), time())
    end = datetime.combine(max(alert.episode.end for alert in alerts) + timedelta(days=1), time())
    query = SpendQuery(
        start=start,
        end=end,
        group_by=(*level.keys, "day", OWNER),
        filters=tuple(filters),
        owners=allocation,
    )
    rows = run_spend(engine, query)
    frame = pd.DataFrame(
        [(*row.key, row.amount) for row in rows], columns=[*level.keys, "day", OWNER, "amount"]
    )
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def _majority_owner(spend: pd.DataFrame, level: Level, alert: Alert) -> str | None:
    """The owner of at least half of one alert's spend in `spend`, else None."""
    episode = alert.episode
    mask = (spend["day"] >= episode.start) & (spend["day"] <= episode.end)
    for dimension, value in zip(level.keys, episode.series, strict=True):
        if value != NONE_LABEL:
            mask &= spend[dimension] == value
    by_owner = spend[mask].groupby(OWNER)["amount"].sum()
    total = by_owner.sum()
    if by_owner.empty or total <= 0:
        return None
    top = by_owner.idxmax()
    if by_owner[top] < total / 2 or top == UNALLOCATED:
        return None
    return str(top)


def alert_owner(engine: Engine, alert: dict[str, Any]) -> Recipient:
    """An alert's owner (as `alerts_with_owners` found it) and their contact, else none."""
    return resolve_recipient(engine, owner=alert.get("owner"))


def may_give_feedback(
    engine: Engine, state: store.AlertState, actor: str, groups: tuple[str, ...] = ()
) -> bool:
    """Whether `actor` (or one of their groups) holds finops for the owner, or is its contact."""
    identities = [actor, *groups]
    owner = alert_owner(engine, state.alert["alert"])
    with engine.connect() as connection:
        if roles.holds(connection, identities, FEEDBACK_ROLE, owner.owner):
            return True
    return owner.owner is not None and owner.contact in identities


def give_feedback(
    engine: Engine,
    settings: Any,
    alert_id: int,
    feedback: str,
    actor: str,
    now: datetime,
    groups: tuple[str, ...] = (),
) -> store.AlertState | None:
    """Record a person's feedback on an alert; for an alert AWS also reported, tell AWS too.

    Only the finops role or the owner of the alert's spend may: others are refused (audited)
    with a `UserError`.
    """
    state = store.get(engine, alert_id)
    if state is None:
        return None
    if not may_give_feedback(engine, state, actor, groups):
        with engine.begin() as connection:
            audit.record(
                connection,
                at=now,
                actor=actor,
                event="refused",
                detail={"alert_id": alert_id, "feedback": feedback, "reason": "anomaly_feedback"},
            )
        owner = state.alert["alert"].get("owner")
        raise UserError(
            "Only FinOps or the owner of this spend can give feedback on this alert.",
            f"owner: {owner}" if owner else "it has no owner yet: ask FinOps",
        )
    try:
        sent = forward_feedback(settings, state.alert, feedback)
    except ConnectorError as error:
        log.warning("feedback on alert %s not sent to AWS: %s", alert_id, error)
        sent = None
    note = {"aws_anomaly": state.alert["aws"]["id"], "aws_feedback": sent} if sent else None
    return store.record_feedback(engine, alert_id, feedback, actor, now, note)


def _status_words(state: store.AlertState) -> str:
    if state.status == store.OPEN:
        return "open"
    label = FEEDBACK_LABELS.get(state.feedback or "", state.status)
    until = f" until {state.snoozed_until:%Y-%m-%d}" if state.status == store.SNOOZED else ""
    return f"{label} ({state.status}{until}, by {state.feedback_by})"


def thread_question(state: store.AlertState, question: str) -> str:
    """A question asked in an alert's thread, restated about its anomaly for the router.

    "Who owns this?" becomes an owner question about the resource (with its contact), or spend
    by owner for another driver's series over its days; "show the top resources" becomes spend
    by resource for the alert's series over its days; anything
    else ("why?") carries the anomaly as context, which routes to the anomaly list over its days
    (expected vs actual, by driver).
    """
    alert = state.alert["alert"]
    values = state.series_key.partition(":")[2].split("|")
    series = " ".join(value for value in values if value != NONE_LABEL)
    days = f"from {alert['date']} to {alert['end_date']}"
    if OWNER_QUESTION.search(question):
        if alert["dimension"] == "resource":
            return f"who owns {alert['key']}?"
        return f"spend by owner for {series} {days}"
    if RESOURCES_QUESTION.search(question):
        return f"top resources for {series} {days}"
    where = ", ".join(
        f"{label} {alert[field]}"
        for label, field in (("service", "service"), ("provider", "provider"), ("owner", "owner"))
        if alert[field]
    )
    return (
        f"{question}\n(Context: the cost anomaly since {alert['date']}: {state.alert['driver']}, "
        f"{where}; {alert['actual']} actual vs {alert['expected']} expected {state.alert['currency']})"
    )
