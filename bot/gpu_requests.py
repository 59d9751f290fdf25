"""Scheduled GPU stop requests (idle scans, off hours): to owners, escalated, receipted.

A scan proposes stopping only machines that no open request already covers, so a request stays
the one place where its machines are decided on. Each run also follows up earlier requests:
one still pending past the owners' deadline goes to the approvers channel, and one that ran
gets a receipt in the thread of every message that asked for it. Where a request was posted is
kept in the audit log (`notified` events), which also answers who was told what, when.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from skills.gpu_offhours import tagged_machines
from skills.money import format_money
from skills.replies import Reply, Table
from storage import actions, audit
from storage.actions import FINISHED, PENDING, Action

if TYPE_CHECKING:
    from bot.notify import Notifier
    from bot.pipeline import Assistant

GPU_STOP = "gpu_stop"
NOTIFIED = "notified"
OWNERS, APPROVERS, RECEIPT = "owners", "approvers", "receipt"
FOLLOW_UP_DAYS = 14
"""Requests notified longer ago than this are no longer followed up."""


class ScanFailed(Exception):
    """The fleet could not be scanned; nothing was proposed."""


def requested_machines(assistant: Assistant) -> set[str]:
    """Machines named by a `gpu_stop` action still pending approval."""
    return {
        target["id"]
        for action in assistant.approvals.pending()
        if action.skill == GPU_STOP
        for target in action.targets
    }


def recipients(targets: list[dict[str, Any]], fallback: str | None) -> list[str]:
    """Each owner's chat identity once, plus `fallback` when some machine's owner has none."""
    found = sorted({target["contact"] for target in targets if target.get("contact")})
    if fallback and any(not target.get("contact") for target in targets):
        found.append(fallback)
    return found


def _record(assistant: Assistant, actor: str, action_id: int, stage: str, posts: list) -> None:
    with assistant.engine.begin() as connection:
        audit.record(
            connection,
            at=assistant.settings.current_time(),
            actor=actor,
            event=NOTIFIED,
            skill=GPU_STOP,
            action_id=action_id,
            detail={"stage": stage, "posts": posts},
        )


def propose_idle_stop(
    assistant: Assistant, notifier: Notifier, requester: str, fallback: str | None
) -> tuple[Reply | None, list[str]]:
    """Ask (as `requester`) to stop idle machines no open request covers; post it to owners.

    Returns the pending request (None when there was nothing new to propose) and the message
    references it was posted as.
    """
    skill = assistant.registry.get(GPU_STOP)
    assert skill is not None
    preview = assistant.execute(skill, {"dry_run": True}, requester)
    if preview.is_error:
        raise ScanFailed(preview.text)
    return request_stop(
        assistant, notifier, requester, fallback, [t["id"] for t in preview.data["targets"]]
    )


def request_stop(
    assistant: Assistant,
    notifier: Notifier,
    requester: str,
    fallback: str | None,
    machines: list[str],
) -> tuple[Reply | None, list[str]]:
    """One pending `gpu_stop` for those of `machines` no open request covers, sent to owners."""
    skill = assistant.registry.get(GPU_STOP)
    assert skill is not None
    covered = requested_machines(assistant)
    new = [machine for machine in machines if machine not in covered]
    if not new:
        return None, []
    reply = assistant.execute(skill, {"instances": new}, requester)
    if reply.is_error:
        raise ScanFailed(reply.text)
    if not reply.data.get("needs_approval"):
        # None of them is idle (any more): nothing to decide on.
        return None, []
    settings = assistant.settings
    if settings.gpu_approvers_channel:
        deadline = settings.current_time() + timedelta(minutes=settings.gpu_owner_deadline_minutes)
        reply = replace(
            reply,
            text=f"{reply.text} Owners: decide by {deadline:%Y-%m-%d %H:%M} UTC; after that it "
            f"goes to {settings.gpu_approvers_channel}.",
        )
    action = reply.data["action"]
    posts = [
        {"target": where, "message": notifier.post(where, reply)}
        for where in recipients(action["targets"], fallback)
    ]
    _record(assistant, requester, action["id"], OWNERS, posts)
    return reply, [post["message"] for post in posts]


def receipt(action: Action) -> Reply:
    """What a stop request did: stopped, skipped and why, failed, and the saving per day."""
    result = action.result or {}
    by_id = {target["id"]: target for target in action.targets}
    done = [by_id[machine] for machine in result.get("done", []) if machine in by_id]
    rows: list[list[Any]] = [
        [target["id"], "stopped", "", target.get("daily_cost")] for target in done
    ]
    rows += [[item["id"], "skipped", item["reason"], None] for item in result.get("skipped", [])]
    rows += [[item["id"], "failed", item["error"], None] for item in result.get("failed", [])]
    saving = sum(target.get("daily_cost") or 0 for target in done)
    currency = action.impact_currency or "USD"
    return Reply(
        text=f"Receipt for action #{action.id}: stopped {len(done)} of {len(action.targets)} "
        f"GPU machine(s), saving about {format_money(saving, currency)}/day.",
        table=Table(
            ["Machine", "Outcome", "Why", "Saving per day"], rows, frozenset({3}), currency
        ),
        data={"receipt": {"action_id": action.id, "saving_per_day": round(saving, 2)}},
    )


def follow_up_requests(assistant: Assistant, notifier: Notifier, actor: str) -> tuple[int, int]:
    """Escalate requests past the owners' deadline; post receipts of those that ran.

    Returns how many were escalated and how many receipts were posted.
    """
    settings = assistant.settings
    now = settings.current_time()
    deadline = timedelta(minutes=settings.gpu_owner_deadline_minutes)
    approvers = settings.gpu_approvers_channel
    notices: dict[int, dict[str, audit.AuditEntry]] = {}
    since = now - timedelta(days=FOLLOW_UP_DAYS)
    for entry in audit.query(assistant.engine, since=since, skill=GPU_STOP, events=(NOTIFIED,)):
        assert entry.action_id is not None
        notices.setdefault(entry.action_id, {})[entry.detail["stage"]] = entry
    escalated = receipts = 0
    for action_id, stages in sorted(notices.items()):
        if OWNERS not in stages or RECEIPT in stages:
            continue
        with assistant.engine.connect() as connection:
            action = actions.get(connection, action_id)
        assert action is not None
        overdue = stages[OWNERS].at + deadline <= now < action.expires_at
        if action.state == PENDING and approvers and APPROVERS not in stages and overdue:
            request = assistant.approvals.pending_reply(action)
            request = replace(
                request,
                text=f"Escalated: the owners did not decide within "
                f"{settings.gpu_owner_deadline_minutes} min. {request.text}",
            )
            posts = [{"target": approvers, "message": notifier.post(approvers, request)}]
            _record(assistant, actor, action_id, APPROVERS, posts)
            escalated += 1
        elif action.state in FINISHED:
            reply = receipt(action)
            posts = [
                {
                    "target": post["target"],
                    "message": notifier.follow_up(post["message"], reply, post["target"]),
                }
                for stage in (OWNERS, APPROVERS)
                if stage in stages
                for post in stages[stage].detail["posts"]
            ]
            _record(assistant, actor, action_id, RECEIPT, posts)
            receipts += 1
    return escalated, receipts


def idle_scan(
    assistant: Assistant, notifier: Notifier, requester: str, fallback: str | None
) -> str:
    """One run of the scan job: follow up earlier requests, then propose newly idle machines."""
    escalated, receipts = follow_up_requests(assistant, notifier, requester)
    reply, messages = propose_idle_stop(assistant, notifier, requester, fallback)
    done = f"{escalated} escalated, {receipts} receipt(s); "
    if reply is None:
        return done + "no newly idle GPU machines"
    action = reply.data["action"]
    return (
        done + f"action #{action['id']} ({len(action['targets'])} machine(s)) posted as {messages}"
    )


def off_hours(
    assistant: Assistant, notifier: Notifier, requester: str, fallback: str | None, *, tag: str
) -> str:
    """One fire of an off-hours schedule: request stopping the running machines with `tag`."""
    machines = tagged_machines(assistant.context(requester), tag)
    reply, messages = request_stop(assistant, notifier, requester, fallback, machines)
    if reply is None:
        return f"nothing to stop of {len(machines)} machine(s) tagged {tag}"
    return f"action #{reply.data['action']['id']} posted as {messages}"
