"""Guarded actions as a state machine whose transitions are compare-and-set updates.

pending -> approved -> executing -> succeeded | failed | partially_failed
pending -> denied | expired;  approved -> expired | failed (could not start);
executing -> interrupted (found still running after a crash; never run again).

A transition is ``UPDATE actions SET state = :new WHERE id = :id AND state = :expected``: of
any number of workers racing for it, exactly one sees a changed row, so only one runs the action.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from storage.models import action_approvals, actions

PENDING = "pending"
APPROVED = "approved"
EXECUTING = "executing"
SUCCEEDED = "succeeded"
FAILED = "failed"
PARTIALLY_FAILED = "partially_failed"
DENIED = "denied"
EXPIRED = "expired"
INTERRUPTED = "interrupted"

FINISHED = (SUCCEEDED, FAILED, PARTIALLY_FAILED)
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, DENIED, EXPIRED}),
    # approved -> failed: the action could not start (approval revoked, skill gone, bad args).
    APPROVED: frozenset({EXECUTING, EXPIRED, FAILED}),
    EXECUTING: frozenset({*FINISHED, INTERRUPTED}),
    # A run declared interrupted that finishes after all still records its true outcome.
    INTERRUPTED: frozenset(FINISHED),
}


@dataclass(frozen=True)
class Action:
    """One stored action."""

    id: int
    skill: str
    risk: str
    args_json: str
    summary: str
    targets: list[dict[str, Any]]
    impact: str
    impact_amount: float | None
    impact_currency: str | None
    team: str | None
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    approvals_required: int
    allow_self_approval: bool
    approver_role: str
    state: str
    state_changed_at: datetime
    decided_by: str | None
    reason: str | None
    claimed_at: datetime | None
    result: dict[str, Any] | None
    request_key: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values, for replies and exports."""
        return {
            "id": self.id,
            "skill": self.skill,
            "risk": self.risk,
            "state": self.state,
            "summary": self.summary,
            "targets": self.targets,
            "impact": self.impact,
            "impact_amount": self.impact_amount,
            "impact_currency": self.impact_currency,
            "team": self.team,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "approvals_required": self.approvals_required,
            "args": json.loads(self.args_json),
            "decided_by": self.decided_by,
            "reason": self.reason,
            "result": self.result,
        }


def _action(row: Any) -> Action:
    values = dict(row._mapping)
    values["targets"] = json.loads(values.pop("targets_json"))
    result = values.pop("result_json")
    values["result"] = json.loads(result) if result else None
    return Action(**values)


def create(connection: Connection, *, targets: list[dict[str, Any]], **values: Any) -> int:
    """Insert an action (state and all other columns given) and return its id."""
    result = connection.execute(
        insert(actions).values(targets_json=json.dumps(targets, default=str), **values)
    )
    return int(result.inserted_primary_key[0])


def get(connection: Connection, action_id: int) -> Action | None:
    """The action `action_id`, or None."""
    row = connection.execute(select(actions).where(actions.c.id == action_id)).first()
    return _action(row) if row else None


def by_request_key(connection: Connection, key: str) -> Action | None:
    """The action a transport request with this key already created, or None."""
    row = connection.execute(select(actions).where(actions.c.request_key == key)).first()
    return _action(row) if row else None


def lock(connection: Connection, action_id: int, state: str) -> bool:
    """Take the action's write lock if it is in `state`; False when it is not.

    A no-op UPDATE as the transaction's first statement: a row lock until commit on PostgreSQL,
    the database write lock on SQLite (taken before any read, so SQLite waits rather than fails).
    """
    result = connection.execute(
        update(actions)
        .where(actions.c.id == action_id, actions.c.state == state)
        .values(state=actions.c.state)
    )
    return result.rowcount == 1


def transition(
    connection: Connection,
    action_id: int,
    expected: str | Collection[str],
    new: str,
    now: datetime,
    **values: Any,
) -> bool:
    """Compare-and-set the state; True only for the one caller that made the change."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    for state in expected:
        if new not in TRANSITIONS.get(state, ()):
            raise ValueError(f"no transition from {state} to {new}")
    if "result" in values:
        values["result_json"] = json.dumps(values.pop("result"), default=str)
    result = connection.execute(
        update(actions)
        .where(actions.c.id == action_id, actions.c.state.in_(expected))
        .values(state=new, state_changed_at=now, **values)
    )
    return result.rowcount == 1


def add_approval(
    connection: Connection, action_id: int, approver: str, via: str, at: datetime
) -> None:
    """Record one approver's approval (unique per action and approver) and the grant it used."""
    connection.execute(
        insert(action_approvals).values(
            action_id=action_id, approver=approver, via=via, approved_at=at
        )
    )


def approvers(connection: Connection, action_id: int) -> list[str]:
    """Who approved the action, in order."""
    statement = (
        select(action_approvals.c.approver)
        .where(action_approvals.c.action_id == action_id)
        .order_by(action_approvals.c.id)
    )
    return list(connection.execute(statement).scalars())


def approvals_via(connection: Connection, action_id: int) -> list[tuple[str, str]]:
    """(approver, identity whose grant made them eligible) for each approval."""
    statement = (
        select(action_approvals.c.approver, action_approvals.c.via)
        .where(action_approvals.c.action_id == action_id)
        .order_by(action_approvals.c.id)
    )
    return [(row.approver, row.via) for row in connection.execute(statement)]


def ids_in_state(
    connection: Connection,
    state: str,
    *,
    before: datetime | None = None,
    column: str = "expires_at",
) -> list[int]:
    """Ids of actions in `state`, optionally only those whose `column` is before `before`."""
    statement = select(actions.c.id).where(actions.c.state == state).order_by(actions.c.id)
    if before is not None:
        statement = statement.where(actions.c[column] <= before)
    return list(connection.execute(statement).scalars())


def list_actions(engine: Engine, *, states: Collection[str] = (), limit: int = 50) -> list[Action]:
    """Actions newest first, optionally only in `states`."""
    statement = select(actions).order_by(actions.c.id.desc()).limit(limit)
    if states:
        statement = statement.where(actions.c.state.in_(list(states)))
    with engine.connect() as connection:
        return [_action(row) for row in connection.execute(statement)]
