"""Anomaly alert state: one row per root cause, so an anomaly is posted once and then updated.

A root cause is a series (its level and path of values) and an episode in it (its kind and first
day). Feedback on an alert: "expected" and "planned" acknowledge it (no more updates) and raise
its series' minimum impact; "not an issue" mutes that episode; "snooze" mutes the series for a
week. Rows change by compare-and-set so
replicas scanning at once post one alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection, Row

from storage import audit
from storage.database import insert_once
from storage.models import anomaly_alerts

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
MUTED = "muted"
SNOOZED = "snoozed"
FEEDBACK = {
    "expected": ACKNOWLEDGED,
    "planned": ACKNOWLEDGED,
    "not_an_issue": MUTED,
    "snooze": SNOOZED,
}
"""Feedback a person can give, and the state it puts the alert in."""
SNOOZE = timedelta(days=7)
TUNING = ("expected", "planned")
"""Feedback saying spend like this is normal for the series."""

NEW = "new"
PERSISTING = "persisting"
QUIET = "quiet"
"""What a scan should do with a detected anomaly: post it, update its message, or nothing."""


@dataclass(frozen=True)
class AlertState:
    """One anomaly alert as stored."""

    id: int
    series_key: str
    cause_key: str
    first_detected: datetime
    last_seen: datetime
    status: str
    channel: str | None
    message_ts: str | None
    feedback: str | None
    feedback_by: str | None
    snoozed_until: datetime | None
    alert: dict[str, Any]


def _state(row: Row) -> AlertState:
    values = dict(row._mapping)
    values["alert"] = json.loads(values.pop("alert_json"))
    return AlertState(**values)


def get(engine: Engine, alert_id: int) -> AlertState | None:
    """One alert, or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(anomaly_alerts).where(anomaly_alerts.c.id == alert_id)
        ).first()
    return _state(row) if row else None


def _series_snoozed(connection: Connection, series_key: str, now: datetime) -> bool:
    """Whether a snooze on any alert of the series silences it now."""
    found = connection.execute(
        select(anomaly_alerts.c.id)
        .where(anomaly_alerts.c.series_key == series_key, anomaly_alerts.c.snoozed_until > now)
        .limit(1)
    ).first()
    return found is not None


def acknowledged(engine: Engine) -> list[AlertState]:
    """Alerts people called "expected" or "planned": they raise their series' minimum impact."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(anomaly_alerts).where(anomaly_alerts.c.feedback.in_(TUNING))
        ).all()
    return [_state(row) for row in rows]


def open_alerts(engine: Engine) -> list[AlertState]:
    """Alerts nobody has acknowledged, muted or snoozed, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(anomaly_alerts)
            .where(anomaly_alerts.c.status == OPEN)
            .order_by(anomaly_alerts.c.first_detected, anomaly_alerts.c.id)
        ).all()
    return [_state(row) for row in rows]


def observe(
    engine: Engine, series_key: str, cause_key: str, alert: dict[str, Any], now: datetime
) -> tuple[str, AlertState | None]:
    """Record that an anomaly was detected now; say whether to post it, update it, or keep quiet.

    The first detection of a root cause inserts its row (`NEW`: the caller posts it and calls
    `set_message`); a later one refreshes it (`PERSISTING` while open: the caller updates the
    message). Snoozed series and muted or acknowledged episodes are `QUIET`.
    """
    with engine.begin() as connection:
        if _series_snoozed(connection, series_key, now):
            return QUIET, None
    detail = json.dumps(alert, sort_keys=True, default=str)
    if insert_once(
        engine,
        anomaly_alerts,
        series_key=series_key,
        cause_key=cause_key,
        first_detected=now,
        last_seen=now,
        status=OPEN,
        alert_json=detail,
    ):
        kind = NEW
    else:
        with engine.begin() as connection:
            connection.execute(
                update(anomaly_alerts)
                .where(
                    anomaly_alerts.c.series_key == series_key,
                    anomaly_alerts.c.cause_key == cause_key,
                )
                .values(last_seen=now, alert_json=detail)
            )
        kind = PERSISTING
    with engine.connect() as connection:
        row = connection.execute(
            select(anomaly_alerts).where(
                anomaly_alerts.c.series_key == series_key,
                anomaly_alerts.c.cause_key == cause_key,
            )
        ).one()
    state = _state(row)
    if kind == PERSISTING and (state.status != OPEN or state.message_ts is None):
        return QUIET, state
    return kind, state


def set_message(engine: Engine, alert_id: int, channel: str, message_ts: str) -> None:
    """Remember where an alert was posted, to update that message later."""
    with engine.begin() as connection:
        connection.execute(
            update(anomaly_alerts)
            .where(anomaly_alerts.c.id == alert_id)
            .values(channel=channel, message_ts=message_ts)
        )


def find_by_message(engine: Engine, channel: str, message_ts: str) -> AlertState | None:
    """The alert posted as this message (for replies in its thread), or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(anomaly_alerts).where(
                anomaly_alerts.c.channel == channel, anomaly_alerts.c.message_ts == message_ts
            )
        ).first()
    return _state(row) if row else None


def record_feedback(
    engine: Engine,
    alert_id: int,
    feedback: str,
    actor: str,
    now: datetime,
    note: dict[str, Any] | None = None,
) -> AlertState | None:
    """Store a person's feedback on an alert, audited (with `note`); None when there is none."""
    if feedback not in FEEDBACK:
        raise ValueError(f"unknown feedback {feedback!r}")
    status = FEEDBACK[feedback]
    with engine.begin() as connection:
        changed = connection.execute(
            update(anomaly_alerts)
            .where(anomaly_alerts.c.id == alert_id)
            .values(
                status=status,
                feedback=feedback,
                feedback_by=actor,
                snoozed_until=now + SNOOZE if status == SNOOZED else None,
            )
        )
        if changed.rowcount != 1:
            return None
        audit.record(
            connection,
            at=now,
            actor=actor,
            event="anomaly_feedback",
            detail={"alert_id": alert_id, "feedback": feedback, "status": status, **(note or {})},
        )
    return get(engine, alert_id)
