"""The action_list skill: guarded actions waiting for approval, or recently decided and run."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.actions import PENDING, list_actions


class ActionListArgs(BaseModel):
    """Arguments of action_list."""

    which: Literal["pending", "recent"] = Field(
        "pending", description="pending: waiting for approval; recent: every state, newest first."
    )
    limit: int = Field(20, ge=1, le=200, description="At most this many actions.")


def parse_action_list_text(text: str, context: SkillContext) -> ActionListArgs:
    """Recent actions when the message says recent/all/history/last, else pending ones."""
    recent = re.search(r"\b(recent|all|history|last|latest|done|finished)\b", text, re.I)
    return ActionListArgs(which="recent" if recent else "pending")


@SKILLS.skill(
    name="action_list",
    args=ActionListArgs,
    parse_text=parse_action_list_text,
    command="actions",
    examples=("pending actions", "what needs approval?", "recent actions"),
    triggers=(
        r"\b(pending|open|waiting|recent|list|show)\b.*\b(actions?|approvals?)\b|^\s*actions?\b|\bneeds? (my )?approval\b",
    ),
)
def action_list(context: SkillContext, args: ActionListArgs) -> Reply:
    """Actions waiting for approval (or recent ones), with who asked and when they expire."""
    if args.which == "pending":
        found = [
            action
            for action in list_actions(context.engine, states=(PENDING,), limit=args.limit)
            if action.expires_at > context.now
        ]
    else:
        found = list_actions(context.engine, limit=args.limit)
    if not found:
        none = (
            "No actions are waiting for approval." if args.which == "pending" else "No actions yet."
        )
        return Reply(text=none, data={"actions": []})
    rows = [
        [
            f"#{action.id}",
            action.state,
            action.summary,
            action.requested_by,
            f"{action.requested_at:%Y-%m-%d %H:%M}",
            f"{action.expires_at:%Y-%m-%d %H:%M}" if action.state == PENDING else "",
        ]
        for action in found
    ]
    what = "waiting for approval" if args.which == "pending" else "most recent first"
    return Reply(
        text=f"{len(found)} action(s) {what}.",
        table=Table(["Action", "State", "What", "Asked by", "Asked (UTC)", "Expires (UTC)"], rows),
        context="Approve or deny with `approve ID` / `deny ID` (or the buttons)."
        if args.which == "pending"
        else None,
        data={"actions": [action.as_dict() for action in found]},
    )
