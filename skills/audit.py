"""The audit_query skill: who asked for, approved, refused or ran what, and when (read-only)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, Field, model_validator

from skills.identities import IDENTITY
from skills.periods import find_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.audit import EVENTS, AuditEntry, query

EVENT_WORDS = (
    (r"\bgrant", "role_granted"),
    (r"\brevok", "role_revoked"),
    (r"approv", "approved"),
    (r"den(y|ied)|reject", "denied"),
    (r"refus", "refused"),
    (r"expir", "expired"),
    (r"interrupt", "interrupted"),
    (r"request|asked", "requested"),
    (r"execut|\bran\b|\brun\b", "executed"),
)


class AuditQueryArgs(BaseModel):
    """Arguments of audit_query."""

    since: date | None = Field(None, description="First day (UTC) to include.")
    until: date | None = Field(None, description="Last day (UTC) to include.")
    actor: str | None = Field(None, description="Identity, or part of one, e.g. 'alice'.")
    skill: str | None = Field(None, description="Only events of this skill, e.g. 'gpu_stop'.")
    event: str | None = Field(None, description=f"One of: {', '.join(EVENTS)}.")
    action_id: int | None = Field(None, description="Only events of this action.")
    limit: int = Field(50, ge=1, le=500, description="The newest this many events.")

    @model_validator(mode="after")
    def _known_event(self) -> AuditQueryArgs:
        if self.event is not None and self.event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}")
        return self


def _skill_for_verb(word: str) -> str | None:
    """The guarded skill whose verb a word inflects: stopped -> gpu_stop, granted -> role_grant."""
    for skill in SKILLS:
        if not skill.guarded:
            continue
        verb = skill.name.rsplit("_", 1)[-1]
        if len(verb) >= 3 and word.startswith(verb[:-1] if verb.endswith("e") else verb):
            return skill.name
    return None


def parse_audit_text(text: str, context: SkillContext) -> AuditQueryArgs:
    """Period, actor, event, skill and action number named in the message."""
    values: dict[str, object] = {}
    found = find_period(text, context.now.date())
    if found:
        period, (start, end) = found
        values.update(since=period.start, until=period.end)
        text = text[:start] + " " + text[end:]
    if identity := IDENTITY.search(text):
        values["actor"] = identity.group(0)
    elif by := re.search(r"\bby @?([\w.@-]+)", text, re.I):
        values["actor"] = by.group(1)
    if number := re.search(r"(?:#|\baction\s+)(\d+)\b", text, re.I):
        values["action_id"] = int(number.group(1))
    for pattern, event in EVENT_WORDS:
        if re.search(pattern, text, re.I):
            values["event"] = event
            break
    if values.get("event") in (None, "executed"):
        # "who stopped what": the runs of the skill whose verb is named.
        for word in re.findall(r"[a-z_]+", text.lower()):
            named = SKILLS.get(word)
            if skill := (named.name if named and named.guarded else None) or _skill_for_verb(word):
                values.update(skill=skill, event="executed")
                break
    return AuditQueryArgs.model_validate(values)


def _details(entry: AuditEntry) -> str:
    detail = entry.detail
    for key in ("reason", "summary", "state"):
        if detail.get(key):
            text = str(detail[key])
            if key == "summary" and detail.get("state"):
                text += f" ({detail['state']})"
            return text
    return json.dumps(detail, default=str)[:120]


@SKILLS.skill(
    name="audit_query",
    args=AuditQueryArgs,
    parse_text=parse_audit_text,
    command="audit",
    examples=("who approved what last week?", "audit log for action #3", "what was refused today?"),
    triggers=(
        r"\baudit\b|\bwho (approved|denied|refused|rejected|stopped|started|granted|revoked|executed|ran|did|asked)\b",
        r"\b(approved|denied|refused|rejected|stopped|executed)\b",
    ),
)
def audit_query(context: SkillContext, args: AuditQueryArgs) -> Reply:
    """Who asked for, approved, refused or ran which guarded action: the audit log."""
    entries = query(
        context.engine,
        since=datetime.combine(args.since, time()) if args.since else None,
        until=datetime.combine(args.until + timedelta(days=1), time()) if args.until else None,
        actor=args.actor,
        skill=args.skill,
        events=(args.event,) if args.event else (),
        action_id=args.action_id,
        limit=args.limit,
    )
    filters = [
        f"{name} {value}"
        for name, value in (
            ("from", args.since),
            ("to", args.until),
            ("actor", args.actor),
            ("skill", args.skill),
            ("event", args.event),
            ("action", args.action_id),
        )
        if value is not None
    ]
    scope = f" ({', '.join(filters)})" if filters else ""
    if not entries:
        return Reply(text=f"No audit events{scope}.", data={"events": []})
    rows = [
        [
            f"{entry.at:%Y-%m-%d %H:%M}",
            entry.actor,
            entry.event,
            entry.skill or "",
            f"#{entry.action_id}" if entry.action_id else "",
            _details(entry),
        ]
        for entry in entries
    ]
    return Reply(
        text=f"{len(entries)} audit event(s){scope}, oldest first.",
        table=Table(["At (UTC)", "Who", "Event", "Skill", "Action", "Details"], rows),
        data={"events": [entry.as_dict() for entry in entries]},
    )
