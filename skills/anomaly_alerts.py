"""Anomaly alerts for channels: which detected anomalies to post or update, and their replies."""

from __future__ import annotations

from dataclasses import dataclass

from skills.anomalies import describe_alert, driver_label, run_detection
from skills.detection import Alert, DetectorParams
from skills.money import format_money
from skills.periods import parse_period
from skills.registry import SkillContext
from skills.replies import Reply, Table
from storage import anomaly_alerts as store

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


def series_key(alert: Alert) -> str:
    """The series an alert is about: its level and path of values."""
    return f"{alert.level.name}:" + "|".join(alert.episode.series)


def cause_key(alert: Alert) -> str:
    """The episode within the series: its kind and first day."""
    return f"{alert.episode.kind}:{alert.episode.start.isoformat()}"


def scan(context: SkillContext, params: DetectorParams | None = None) -> list[Notice]:
    """Detect anomalies now and record them; the ones to post or update, worst first."""
    period = parse_period(SCAN_PERIOD, context.now.date())
    currency, _ = context.vocabulary.choose_currency(None)
    detection = run_detection(context, period, params or DetectorParams(), currency)
    notices = []
    for alert in detection.alerts:
        detail = {
            "alert": alert.as_dict(),
            "driver": driver_label(alert),
            "text": describe_alert(alert, currency),
            "currency": currency,
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
    return Reply(
        text=f"Cost anomaly: {detail['text']}",
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


def _status_words(state: store.AlertState) -> str:
    if state.status == store.OPEN:
        return "open"
    label = FEEDBACK_LABELS.get(state.feedback or "", state.status)
    until = f" until {state.snoozed_until:%Y-%m-%d}" if state.status == store.SNOOZED else ""
    return f"{label} ({state.status}{until}, by {state.feedback_by})"


def thread_question(state: store.AlertState, question: str) -> str:
    """A question asked in an alert's thread, with the anomaly it is about spelled out."""
    alert = state.alert["alert"]
    where = ", ".join(
        f"{label} {alert[field]}"
        for label, field in (("service", "service"), ("provider", "provider"), ("owner", "owner"))
        if alert[field]
    )
    return (
        f"{question}\n(Context: the cost anomaly since {alert['date']}: {state.alert['driver']}, "
        f"{where}; {alert['actual']} actual vs {alert['expected']} expected {state.alert['currency']})"
    )
