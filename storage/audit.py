"""The append-only audit log: record an event, query events; there is no way to change one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from storage.models import audit_log

EVENTS = (
    "requested",
    "refused",
    "approved",
    "denied",
    "expired",
    "started",
    "executed",
    "interrupted",
    "role_granted",
    "role_revoked",
    "allocation_changed",
    "budget_set",
    "budget_nested",
    "anomaly_feedback",
    "notified",
)
"""Every kind of audit event, in the order an action usually meets them."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as stored."""

    id: int
    at: datetime
    actor: str
    event: str
    skill: str | None
    action_id: int | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "event": self.event,
            "skill": self.skill,
            "action_id": self.action_id,
            "detail": self.detail,
        }


def record(
    connection: Connection,
    *,
    at: datetime,
    actor: str,
    event: str,
    skill: str | None = None,
    action_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event, inside the caller's transaction so it commits with what it records."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    connection.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            event=event,
            skill=skill,
            action_id=action_id,
            detail_json=json.dumps(detail or {}, sort_keys=True, default=str),
        )
    )


def query(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    skill: str | None = None,
    events: tuple[str, ...] = (),
    action_id: int | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Events oldest first; `until` is exclusive, `actor` matches part of the identity."""
    statement = select(audit_log).order_by(audit_log.c.id)
    if since is not None:
        statement = statement.where(audit_log.c.at >= since)
    if until is not None:
        statement = statement.where(audit_log.c.at < until)
    if actor:
        statement = statement.where(func.lower(audit_log.c.actor).contains(actor.lower()))
    if skill:
        statement = statement.where(audit_log.c.skill == skill)
    if events:
        statement = statement.where(audit_log.c.event.in_(events))
    if action_id is not None:
        statement = statement.where(audit_log.c.action_id == action_id)
    if limit is not None:
        # The newest `limit` events, still returned oldest first.
        newest = statement.order_by(None).order_by(audit_log.c.id.desc()).limit(limit).subquery()
        statement = select(newest).order_by(newest.c.id)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [
        AuditEntry(
            row.id,
            row.at,
            row.actor,
            row.event,
            row.skill,
            row.action_id,
            json.loads(row.detail_json),
        )
        for row in rows
    ]
