"""Guarded calls: authorization, the approval gate, exactly-once execution, resume and audit.

Only `approve` moves an action towards running, and only transports call it, on a person's
click or typed command: the router and the LLM reach skills through `Assistant.execute`, where a
destructive call can do no more than create a pending action.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from skills.errors import UserError
from skills.identities import is_group
from skills.registry import FAILED_TARGETS, Registry, Skill, SkillContext
from skills.replies import Reply, Table
from storage import actions as store
from storage import audit, roles
from storage.actions import (
    APPROVED,
    DENIED,
    EXECUTING,
    EXPIRED,
    FAILED,
    INTERRUPTED,
    PARTIALLY_FAILED,
    PENDING,
    SUCCEEDED,
    Action,
)

log = logging.getLogger(__name__)

SYSTEM = "spendbot"
"""The actor of events nobody clicked: expiry, and runs resumed after a restart."""

STALE_AFTER = timedelta(minutes=15)
"""An action still `executing` this long after its claim is taken to have crashed mid-run."""

STATE_WORDS = {
    PENDING: "is waiting for approval",
    APPROVED: "is approved and about to run",
    EXECUTING: "is running",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    PARTIALLY_FAILED: "partially failed",
    DENIED: "was denied",
    EXPIRED: "expired",
    INTERRUPTED: "was interrupted while running",
}


def _team_words(team: str | None) -> str:
    return f" for team {team}" if team else ""


def targets_table(targets: list[dict[str, Any]]) -> Table | None:
    """The targets of an action as a table, `id` first, then every other key in order seen."""
    if not targets:
        return None
    columns: list[str] = ["id"]
    for target in targets:
        columns += [key for key in target if key not in columns]
    rows = [[_cell(target.get(column)) for column in columns] for target in targets]
    return Table(columns, rows)


def _cell(value: Any) -> str | float | int | None:
    if value is None or isinstance(value, str | int | float):
        return value
    return json.dumps(value, default=str)


class Approvals:
    """The approval gate and the only code that runs a guarded skill's handler."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        clock: Callable[[], datetime],
        context: Callable[[str], SkillContext],
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.clock = clock
        self.context = context

    # A guarded call ---------------------------------------------------------------------------

    def call(
        self,
        skill: Skill,
        args: BaseModel,
        user: str,
        *,
        groups: tuple[str, ...] = (),
        request_key: str | None = None,
    ) -> Reply:
        """Plan a guarded call, then run it, refuse it, or leave it pending approval.

        `groups` are the user's group identities (``slack-group:S1``), as the transport knows
        them: a role granted to a group counts for its members.
        """
        assert skill.plan is not None and skill.policy is not None and skill.permission
        context = self.context(user)
        plan = skill.plan(context, args)
        if plan.preview_only:
            return Reply(
                text=plan.summary,
                table=targets_table(list(plan.targets)),
                context=plan.impact or None,
                data={"preview": True, "targets": list(plan.targets)},
            )
        policy = skill.policy
        now = context.now
        args_json = args.model_dump_json()
        request = {
            "args": json.loads(args_json),
            "summary": plan.summary,
            "targets": list(plan.targets),
            "impact": plan.impact,
        }
        try:
            with self.engine.begin() as connection:
                if request_key and (existing := store.by_request_key(connection, request_key)):
                    return self._status_reply(existing, "This request was already received.")
                via = roles.holder(connection, [user, *groups], skill.permission, plan.team)
                if policy.required:
                    state = PENDING
                elif via is not None:
                    state = APPROVED
                else:
                    reason = (
                        f"{skill.name} needs the '{skill.permission}' role"
                        f"{_team_words(plan.team)}, which {user} does not hold."
                    )
                    audit.record(
                        connection,
                        at=now,
                        actor=user,
                        event="refused",
                        skill=skill.name,
                        detail={"attempt": "run", "reason": reason, **request},
                    )
                    return Reply(text=f"Refused: {reason}", is_error=True, data={"refused": reason})
                action_id = store.create(
                    connection,
                    skill=skill.name,
                    risk=skill.risk,
                    args_json=args_json,
                    summary=plan.summary,
                    targets=list(plan.targets),
                    impact=plan.impact,
                    impact_amount=plan.impact_amount,
                    impact_currency=plan.currency,
                    team=plan.team,
                    requested_by=user,
                    requested_at=now,
                    expires_at=now + policy.expires_after,
                    # Run at once on the caller's role: that role is its one approval.
                    approvals_required=policy.approvals if state == PENDING else 1,
                    allow_self_approval=policy.allow_self_approval,
                    approver_role=(policy.approver_role if state == PENDING else None)
                    or skill.permission,
                    state=state,
                    state_changed_at=now,
                    request_key=request_key,
                )
                audit.record(
                    connection,
                    at=now,
                    actor=user,
                    event="requested",
                    skill=skill.name,
                    action_id=action_id,
                    detail={**request, "state": state},
                )
                if state == APPROVED:
                    # Holding the role is the approval of a write that needs no other person.
                    store.add_approval(connection, action_id, user, via or user, now)
                    audit.record(
                        connection,
                        at=now,
                        actor=user,
                        event="approved",
                        skill=skill.name,
                        action_id=action_id,
                        detail={"by_role": skill.permission, "approvals": 1, "required": 1},
                    )
                action = store.get(connection, action_id)
        except IntegrityError:
            # The same request_key raced in twice: the other one created the action.
            with self.engine.connect() as connection:
                existing = store.by_request_key(connection, request_key or "")
            if existing is None:
                raise
            return self._status_reply(existing, "This request was already received.")
        assert action is not None
        if state == PENDING:
            return self.pending_reply(action)
        return self._run_or_status(action.id, user)

    # Decisions --------------------------------------------------------------------------------

    def approve(self, action_id: int, approver: str, groups: tuple[str, ...] = ()) -> Reply:
        """Record `approver`'s approval; run the action when it has all it needs, exactly once."""
        now = self.clock()
        with self.engine.begin() as connection:
            if not store.lock(connection, action_id, PENDING):
                return self._not_pending(connection, action_id, approver, "approve", now)
            action = store.get(connection, action_id)
            assert action is not None
            if action.expires_at <= now:
                return self._expire(connection, action, now)
            via = roles.holder(connection, [approver, *groups], action.approver_role, action.team)
            refusal = self._approval_refusal(connection, action, approver, via)
            if refusal is not None or via is None:
                reason = refusal or "not eligible"
                return self._refuse(connection, action, approver, "approve", reason, now)
            store.add_approval(connection, action_id, approver, via, now)
            count = len(store.approvers(connection, action_id))
            audit.record(
                connection,
                at=now,
                actor=approver,
                event="approved",
                skill=action.skill,
                action_id=action_id,
                detail={"approvals": count, "required": action.approvals_required},
            )
            if count < action.approvals_required:
                return Reply(
                    text=f"Approval recorded for action #{action_id} ({count} of "
                    f"{action.approvals_required}); it runs after the next approval.",
                    data={"action": action.as_dict(), "approvals": count},
                )
            store.transition(connection, action_id, PENDING, APPROVED, now)
        return self._run_or_status(action_id, approver)

    def deny(
        self,
        action_id: int,
        actor: str,
        reason: str | None = None,
        groups: tuple[str, ...] = (),
    ) -> Reply:
        """Deny a pending action (an approver) or withdraw it (its requester); it never runs."""
        now = self.clock()
        with self.engine.begin() as connection:
            if not store.lock(connection, action_id, PENDING):
                return self._not_pending(connection, action_id, actor, "deny", now)
            action = store.get(connection, action_id)
            assert action is not None
            if action.expires_at <= now:
                return self._expire(connection, action, now)
            if actor != action.requested_by and not roles.holds(
                connection, [actor, *groups], action.approver_role, action.team
            ):
                refusal = (
                    f"Only its requester or someone with the '{action.approver_role}' role"
                    f"{_team_words(action.team)} can deny action #{action_id}."
                )
                return self._refuse(connection, action, actor, "deny", refusal, now)
            store.transition(
                connection, action_id, PENDING, DENIED, now, decided_by=actor, reason=reason
            )
            audit.record(
                connection,
                at=now,
                actor=actor,
                event="denied",
                skill=action.skill,
                action_id=action_id,
                detail={"reason": reason},
            )
        return Reply(
            text=f"Action #{action_id} denied; nothing was run: {action.summary}",
            data={"action": {**action.as_dict(), "state": DENIED}},
        )

    def _approval_refusal(
        self, connection: Connection, action: Action, approver: str, via: str | None
    ) -> str | None:
        if is_group(approver):
            return "A group cannot approve; a person must."
        if approver in store.approvers(connection, action.id):
            return f"You have already approved action #{action.id}."
        if approver == action.requested_by and not action.allow_self_approval:
            return f"You asked for action #{action.id}, so someone else must approve it."
        if via is None:
            return (
                f"Only people with the '{action.approver_role}' role{_team_words(action.team)} "
                f"can approve action #{action.id}."
            )
        return None

    def _refuse(
        self,
        connection: Connection,
        action: Action | None,
        actor: str,
        attempt: str,
        reason: str,
        now: datetime,
        action_id: int | None = None,
    ) -> Reply:
        audit.record(
            connection,
            at=now,
            actor=actor,
            event="refused",
            skill=action.skill if action else None,
            action_id=action.id if action else action_id,
            detail={"attempt": attempt, "reason": reason},
        )
        return Reply(text=f"Refused: {reason}", is_error=True, data={"refused": reason})

    def _not_pending(
        self, connection: Connection, action_id: int, actor: str, attempt: str, now: datetime
    ) -> Reply:
        action = store.get(connection, action_id)
        if action is None:
            reason = f"There is no action #{action_id}."
        else:
            reason = (
                f"Action #{action_id} {STATE_WORDS[action.state]}; it can no longer be {attempt}d."
            )
        return self._refuse(connection, action, actor, attempt, reason, now, action_id)

    def _expire(self, connection: Connection, action: Action, now: datetime) -> Reply:
        store.transition(connection, action.id, action.state, EXPIRED, now)
        audit.record(
            connection,
            at=now,
            actor=SYSTEM,
            event="expired",
            skill=action.skill,
            action_id=action.id,
            detail={"expires_at": action.expires_at.isoformat(), "was": action.state},
        )
        return Reply(
            text=f"Action #{action.id} expired at {action.expires_at:%Y-%m-%d %H:%M} UTC; "
            "nothing was run. Ask again if it is still needed.",
            is_error=True,
            data={"action": {**action.as_dict(), "state": EXPIRED}, "refused": "expired"},
        )

    # Running ----------------------------------------------------------------------------------

    def _run_or_status(self, action_id: int, by: str) -> Reply:
        """Run the action, or say where it stands when another worker claimed it first."""
        reply = self._run(action_id, by)
        if reply is not None:
            return reply
        with self.engine.connect() as connection:
            action = store.get(connection, action_id)
        assert action is not None
        return self._status_reply(action)

    def _run(self, action_id: int, by: str) -> Reply | None:
        """Claim an approved action and run it; None for every caller but the one claimant."""
        now = self.clock()
        with self.engine.begin() as connection:
            if not store.lock(connection, action_id, APPROVED):
                return None
            action = store.get(connection, action_id)
            assert action is not None
            if action.expires_at <= now:
                return self._expire(connection, action, now)
            problem = self._cannot_start(connection, action)
            if problem:
                result = {"error": problem, "done": [], "skipped": [], "failed": []}
                store.transition(connection, action_id, APPROVED, FAILED, now, result=result)
                self._record_result(connection, action, FAILED, result, now)
                return self._result_reply(action, FAILED, result, None)
            store.transition(connection, action_id, APPROVED, EXECUTING, now, claimed_at=now)
            audit.record(
                connection,
                at=now,
                actor=by,
                event="started",
                skill=action.skill,
                action_id=action_id,
                detail={"approved_by": store.approvers(connection, action_id)},
            )
        skill = self.registry.get(action.skill)
        assert skill is not None
        args = skill.args_model.model_validate_json(action.args_json)
        context = replace(self.context(action.requested_by), action_id=action_id)
        targets, skipped = self._revalidate(skill, context, args, action.targets)
        reply: Reply | None = None
        result: dict[str, Any] = {"done": [], "skipped": skipped, "failed": []}
        if action.targets and not targets:
            state = SUCCEEDED
        else:
            try:
                reply = skill.handler(replace(context, targets=tuple(targets)), args)
            except UserError as error:
                result["error"] = error.message
                result["failed"] = [{"id": t["id"], "error": error.message} for t in targets]
            except Exception:
                incident = uuid.uuid4().hex[:8]
                log.exception(
                    "action #%s (%s) failed (incident %s)", action_id, skill.name, incident
                )
                result["error"] = f"unexpected error (incident {incident})"
                result["incident"] = incident
                result["failed"] = [{"id": t["id"], "error": result["error"]} for t in targets]
            else:
                result["failed"] = list(reply.data.get(FAILED_TARGETS, []))
                result["text"] = reply.text
            failed_ids = {str(failure["id"]) for failure in result["failed"]}
            result["done"] = [t["id"] for t in targets if str(t["id"]) not in failed_ids]
            if "error" in result and not targets:
                state = FAILED
            elif not result["failed"]:
                state = SUCCEEDED
            else:
                state = PARTIALLY_FAILED if result["done"] else FAILED
        with self.engine.begin() as connection:
            store.transition(
                connection, action_id, (EXECUTING, INTERRUPTED), state, self.clock(), result=result
            )
            self._record_result(connection, action, state, result, self.clock())
        return self._result_reply(action, state, result, reply)

    def _cannot_start(self, connection: Connection, action: Action) -> str | None:
        """Why an approved action may not run now; approval is re-checked, not trusted."""
        skill = self.registry.get(action.skill)
        if skill is None or not skill.guarded:
            return f"skill {action.skill} is not available"
        try:
            skill.args_model.model_validate_json(action.args_json)
        except ValidationError:
            return f"its stored arguments no longer fit {action.skill}"
        valid = [
            approver
            for approver, via in store.approvals_via(connection, action.id)
            if roles.holds(connection, [via], action.approver_role, action.team)
        ]
        if len(valid) < action.approvals_required:
            return f"an approver no longer holds the '{action.approver_role}' role"
        return None

    def _revalidate(
        self,
        skill: Skill,
        context: SkillContext,
        args: BaseModel,
        targets: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Targets still valid, and those skipped with why (changed since the proposal)."""
        if skill.revalidate is None:
            return list(targets), []
        valid, skipped = [], []
        for target in targets:
            try:
                reason = skill.revalidate(context, args, target)
            except Exception:
                log.exception("re-validating %s of %s failed", target.get("id"), skill.name)
                reason = "could not be re-checked"
            if reason:
                skipped.append({"id": target["id"], "reason": reason})
            else:
                valid.append(target)
        return valid, skipped

    def _record_result(
        self,
        connection: Connection,
        action: Action,
        state: str,
        result: dict[str, Any],
        now: datetime,
    ) -> None:
        audit.record(
            connection,
            at=now,
            actor=action.requested_by,
            event="executed",
            skill=action.skill,
            action_id=action.id,
            detail={
                "state": state,
                "summary": action.summary,
                "approved_by": store.approvers(connection, action.id),
                **result,
            },
        )

    # Start-up and housekeeping ---------------------------------------------------------------

    def expire_due(self) -> list[int]:
        """Mark pending actions past their expiry as expired; their ids."""
        now = self.clock()
        with self.engine.connect() as connection:
            due = store.ids_in_state(connection, PENDING, before=now)
        expired = []
        for action_id in due:
            with self.engine.begin() as connection:
                if store.lock(connection, action_id, PENDING):
                    action = store.get(connection, action_id)
                    assert action is not None
                    self._expire(connection, action, now)
                    expired.append(action_id)
        return expired

    def resume(self, *, stale_after: timedelta = STALE_AFTER) -> list[Reply]:
        """After a restart: run actions approved but never claimed; report ones cut off mid-run.

        An action still `executing` since before `stale_after` is marked interrupted and never
        run again: whether its change happened is unknown, so a person must look.
        """
        self.expire_due()
        now = self.clock()
        with self.engine.connect() as connection:
            approved = store.ids_in_state(connection, APPROVED)
            stale = store.ids_in_state(
                connection, EXECUTING, before=now - stale_after, column="claimed_at"
            )
        replies = [
            reply for action_id in approved if (reply := self._run(action_id, SYSTEM)) is not None
        ]
        for action_id in stale:
            with self.engine.begin() as connection:
                if not store.transition(connection, action_id, EXECUTING, INTERRUPTED, now):
                    continue
                action = store.get(connection, action_id)
                assert action is not None
                audit.record(
                    connection,
                    at=now,
                    actor=SYSTEM,
                    event="interrupted",
                    skill=action.skill,
                    action_id=action_id,
                    detail={"claimed_at": str(action.claimed_at), "summary": action.summary},
                )
            replies.append(
                Reply(
                    text=f"Action #{action_id} was interrupted while running ({action.summary}). "
                    "It will not be run again: check its targets by hand.",
                    table=targets_table(action.targets),
                    is_error=True,
                    data={"action": action.as_dict()},
                )
            )
        return replies

    def pending(self) -> list[Action]:
        """Pending actions, newest first, after expiring the overdue ones."""
        self.expire_due()
        return store.list_actions(self.engine, states=(PENDING,))

    # Replies ----------------------------------------------------------------------------------

    @staticmethod
    def pending_reply(action: Action) -> Reply:
        """A new pending action: what will happen, who may approve, until when."""
        who = f"someone with the '{action.approver_role}' role{_team_words(action.team)}"
        if not action.allow_self_approval:
            who += " other than you"
        count = action.approvals_required
        return Reply(
            text=f"Needs approval: {action.summary}. Nothing has run yet. Action #{action.id} "
            f"needs {count} approval{'s' if count > 1 else ''} by {who}; "
            f"it expires {action.expires_at:%Y-%m-%d %H:%M} UTC.",
            table=targets_table(action.targets),
            context=f"Estimated impact: {action.impact}" if action.impact else None,
            data={"needs_approval": True, "action": action.as_dict()},
        )

    def still_pending_reply(self, action_id: int) -> Reply | None:
        """The request for `action_id` while it still waits for approvals, else None."""
        with self.engine.connect() as connection:
            action = store.get(connection, action_id)
        if action is None or action.state != PENDING:
            return None
        return self.pending_reply(action)

    @staticmethod
    def _status_reply(action: Action, prefix: str = "") -> Reply:
        text = f"{prefix} Action #{action.id} {STATE_WORDS[action.state]}: {action.summary}"
        return Reply(
            text=text.strip(),
            data={"action": action.as_dict(), "needs_approval": action.state == PENDING},
        )

    @staticmethod
    def _result_reply(
        action: Action, state: str, result: dict[str, Any], reply: Reply | None
    ) -> Reply:
        lines = [f"Action #{action.id} {STATE_WORDS[state]}: {action.summary}."]
        if reply is not None and reply.text:
            lines.append(reply.text)
        if result.get("error"):
            lines.append(f"Error: {result['error']}")
        rows: list[list[str | float | int | None]] = [
            [str(item["id"]), "skipped", item["reason"]] for item in result["skipped"]
        ] + [[str(item["id"]), "failed", item["error"]] for item in result["failed"]]
        return Reply(
            text="\n".join(lines),
            table=Table(["Target", "Outcome", "Why"], rows) if rows else None,
            is_error=state == FAILED,
            data={"action": {**action.as_dict(), "state": state, "result": result}},
        )
