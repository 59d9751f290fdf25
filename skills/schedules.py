"""Schedule skills: digests, anomaly and idle-GPU scans, budget checks or data syncs on a timetable."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import Engine

from skills.errors import UserError
from skills.registry import SKILLS, ActionPlan, ApprovalPolicy, Planner, SkillContext
from skills.replies import Reply, Table
from storage import schedules as store

FINOPS = "finops"
SCHEDULE_POLICY = ApprovalPolicy(required=False)
"""A finops holder changes schedules at once; anyone else is refused (and audited)."""

Kind = Literal["digest", "anomaly_scan", "budget_check", "sync", "gpu_idle_scan"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
KIND_LABELS = {
    "digest": "digest",
    "anomaly_scan": "anomaly scan",
    "budget_check": "budget check",
    "sync": "data sync",
    "gpu_idle_scan": "idle-GPU scan",
}
NEEDS_TARGET = ("digest", "anomaly_scan", "gpu_idle_scan")

_KIND_WORDS = (
    ("gpu_idle_scan", re.compile(r"\bidle\s+gpus?\b|\bgpus?\b.{0,30}\bidle\b", re.I)),
    ("digest", re.compile(r"\b(digest|recap|summary)\b", re.I)),
    ("anomaly_scan", re.compile(r"\banomal\w*", re.I)),
    ("budget_check", re.compile(r"\bbudgets?\b", re.I)),
    ("sync", re.compile(r"\bsync\w*\b", re.I)),
)
_TARGET = re.compile(
    r"<#(?P<mention>C[A-Z0-9]+)(?:\|[^>]*)?>|(?P<prefixed>(?:slack|teams):\S+)|(?P<name>#[\w-]+)",
    re.I,
)
_TIME = re.compile(r"\bat\s+(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm)?\b", re.I)
_ZONE = re.compile(r"\b(UTC|[A-Z][a-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?)\b")
_DAY = re.compile(
    r"\b(mon|tue|wed|thu|fri|sat|sun)(?:day|s|sday|nesday|rsday|urday|r|rs)?s?\b", re.I
)
_WEEKLY = re.compile(r"\b(weekly|every\s+week|each\s+week)\b", re.I)
_DAILY = re.compile(r"\b(daily|every\s+day|each\s+day|nightly)\b", re.I)
_TIME_VALUE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def normalize_target(text: str) -> str:
    """``#finops`` -> ``slack:#finops``; ``<#C012|x>`` -> ``slack:C012``; prefixed targets stay."""
    match = _TARGET.fullmatch(text.strip())
    if not match:
        raise ValueError("write the target as #channel, slack:C0123 or teams:<conversation>")
    if match.group("mention"):
        return f"slack:{match.group('mention')}"
    if match.group("name"):
        return f"slack:{match.group('name')}"
    return match.group("prefixed")


def optional_target(value: str | None) -> str | None:
    """A normalized target, or None when none is given."""
    return None if value is None or not value.strip() else normalize_target(value)


def clock_time(value: str) -> str:
    """``9:00`` -> ``09:00``; anything but HH:MM (24 h) is refused."""
    match = _TIME_VALUE.fullmatch(value.strip())
    if not match:
        raise ValueError("time is HH:MM, e.g. 09:00")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def zone_name(value: str) -> str:
    """An IANA time zone name, checked."""
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
        ) from None
    return value.strip()


class ScheduleCreateArgs(BaseModel):
    """Arguments of schedule_create."""

    kind: Kind = Field(
        description="digest (weekly spend digest), anomaly_scan (post new cost anomalies), "
        "budget_check (budget threshold alerts), sync (pull billing data from the sources) or "
        "gpu_idle_scan (propose stopping idle GPUs to their owners, for approval)."
    )
    target: str | None = Field(
        None,
        description="Where to post: #channel, slack:C0123 or teams:<conversation>. Needed for "
        "digest, anomaly_scan and gpu_idle_scan (for machines whose owner has no contact); "
        "budget alerts go to each budget's own contact first.",
    )
    frequency: Literal["daily", "weekly"] = Field("daily", description="daily, or weekly on `day`.")
    day: Day = Field("mon", description="Day of the week of a weekly schedule.")
    time: str = Field("09:00", description="Local time of day, HH:MM (24 h).")
    timezone: str = Field("UTC", description="IANA time zone of `time`, e.g. Europe/Berlin.")
    scope: dict[str, str] = Field(
        default_factory=dict, description="A digest's scope, e.g. {'team': 'research'}."
    )

    _target = field_validator("target")(optional_target)
    _time = field_validator("time")(clock_time)
    _zone = field_validator("timezone")(zone_name)

    @model_validator(mode="after")
    def _needs_target(self) -> ScheduleCreateArgs:
        if self.kind in NEEDS_TARGET and self.target is None:
            raise ValueError(f"a {KIND_LABELS[self.kind]} needs a target channel, e.g. #finops")
        return self

    @property
    def schedule_id(self) -> str:
        """Stable id: the same kind, target and scope again replaces the schedule."""
        scope = ",".join(f"{key}={value}" for key, value in sorted(self.scope.items()))
        return ":".join(part for part in (self.kind, self.target or "default", scope) if part)

    @property
    def when(self) -> str:
        """The timetable in words."""
        days = f"every {DAY_NAMES[self.day]}" if self.frequency == "weekly" else "daily"
        return f"{days} at {self.time} {self.timezone}"

    def trigger(self) -> CronTrigger:
        """The cron trigger of this timetable."""
        hour, minute = (int(part) for part in self.time.split(":"))
        return CronTrigger(
            day_of_week=self.day if self.frequency == "weekly" else "*",
            hour=hour,
            minute=minute,
            timezone=ZoneInfo(self.timezone),
        )


def parse_create_text(text: str, context: SkillContext) -> ScheduleCreateArgs:
    """Schedule arguments from chat: what, where, how often, when and in which time zone."""
    kind = next((name for name, words in _KIND_WORDS if words.search(text)), None)
    if kind is None:
        raise UserError(
            "What should I schedule?",
            "a digest, an anomaly scan, an idle-GPU scan, a budget check or a data sync, e.g. "
            "'weekly digest to #finops every Monday at 9:00 Europe/Berlin'",
        )
    values: dict = {"kind": kind}
    if target := _TARGET.search(text):
        values["target"] = target.group(0)
    day = _DAY.search(text)
    weekly = _WEEKLY.search(text) or (day and not _DAILY.search(text))
    values["frequency"] = (
        "weekly" if weekly or (kind == "digest" and not _DAILY.search(text)) else "daily"
    )
    if day:
        values["day"] = day.group(1).lower()
    if time := _TIME.search(text):
        hour, minute = int(time.group(1)), int(time.group(2) or 0)
        if time.group(3):
            hour = hour % 12 + (12 if time.group(3).lower() == "pm" else 0)
        values["time"] = f"{hour:02d}:{minute:02d}"
    if zone := _ZONE.search(text):
        values["timezone"] = zone.group(1)
    if (team := re.search(r"\bfor\s+team\s+([\w.\-]+)", text, re.I)) and kind == "digest":
        values["scope"] = {"team": team.group(1)}
    try:
        return ScheduleCreateArgs(**values)
    except ValueError as error:
        raise UserError(
            str(error).splitlines()[-1].strip(), "e.g. 'daily anomaly scan at 8:00 to #alerts'"
        ) from None


def plan_create(context: SkillContext, args: ScheduleCreateArgs) -> ActionPlan:
    """One schedule, created or replaced."""
    previous = store.get(context.engine, args.schedule_id)
    where = f" to {args.target}" if args.target else ""
    return ActionPlan(
        summary=f"{'Replace' if previous else 'Create'} the schedule: {KIND_LABELS[args.kind]}"
        f"{where} {args.when}",
        targets=({"id": args.schedule_id, "when": args.when, "target": args.target},),
        impact="runs once per fire across all replicas; a fire missed while the bot was down "
        f"runs once on restart if within {store.GRACE_SECONDS // 3600} hours",
    )


@SKILLS.skill(
    name="schedule_create",
    args=ScheduleCreateArgs,
    parse_text=parse_create_text,
    command="schedule",
    examples=(
        "post a weekly digest to #finops every Monday at 9:00 Europe/Berlin",
        "schedule a daily anomaly scan at 8:00 to #alerts",
        "budget check daily",
        "scan for idle GPUs every day at 18:00 to #gpu-alerts",
    ),
    triggers=(
        r"\b(schedule|every\s+(day|week|mon\w*|tue\w*|wed\w*|thu\w*|fri\w*|sat\w*|sun\w*))\b.*",
        r"\b(daily|weekly|nightly)\b.*\bat\s+\d{1,2}\b.*",
        r"\b(digest|anomal\w*|budget|sync)\b.*\b(daily|weekly|every)\b.*",
        r"\b(digest|scan|check|sync)\s+(daily|weekly|nightly|every)\b",
        r"\bscan\b.*\bidle\b.*\bgpus?\b.*\b(daily|weekly|nightly|every|at)\b.*",
    ),
    risk="write",
    permission=FINOPS,
    plan=plan_create,
    policy=SCHEDULE_POLICY,
)
def schedule_create(context: SkillContext, args: ScheduleCreateArgs) -> Reply:
    """Schedule a digest, anomaly or idle-GPU scan, budget check or data sync, posted to a channel.

    Runs daily or weekly at a local time in any IANA time zone (default UTC). The same kind,
    channel and scope again replaces the schedule.
    """
    schedule = store.add(
        context.engine,
        args.schedule_id,
        kind=args.kind,
        target=args.target,
        args={"scope": args.scope} if args.scope else {},
        trigger=args.trigger(),
        when=args.when,
        now=context.now,
    )
    where = f" to {schedule.target}" if schedule.target else ""
    next_run = f"{schedule.next_run:%Y-%m-%d %H:%M} UTC" if schedule.next_run else "never"
    return Reply(
        text=f"Scheduled: {KIND_LABELS[args.kind]}{where}, {schedule.when}. Next run: {next_run}.",
        data={"schedule": schedule.as_dict()},
    )


class ScheduleListArgs(BaseModel):
    """Arguments of schedule_list (none)."""


@SKILLS.skill(
    name="schedule_list",
    args=ScheduleListArgs,
    parse_text=lambda text, context: ScheduleListArgs(),
    command="schedules",
    examples=("list schedules", "what is scheduled?", "show the scheduled jobs"),
    triggers=(
        r"\b(list|show|which|what)\b.{0,30}\b(schedules?|scheduled)\b",
        r"\bscheduled\s+(jobs?|posts?|reports?)\b",
    ),
)
def schedule_list(context: SkillContext, args: ScheduleListArgs) -> Reply:
    """The scheduled digests, scans, budget checks and syncs, with their next run."""
    found = store.list_schedules(context.engine)
    if not found:
        return Reply(
            text="Nothing is scheduled yet.",
            context="e.g. 'weekly digest to #finops every Monday at 9:00 Europe/Berlin'",
            data={"schedules": []},
        )
    rows = [
        [
            item.id,
            KIND_LABELS.get(item.kind, item.kind),
            item.target or "",
            item.when,
            "paused" if item.paused else f"{item.next_run:%Y-%m-%d %H:%M} UTC",
        ]
        for item in found
    ]
    return Reply(
        text=f"{len(found)} schedule{'s' if len(found) != 1 else ''}.",
        table=Table(["Id", "What", "Target", "When", "Next run"], rows),
        data={"schedules": [item.as_dict() for item in found]},
    )


class ScheduleChangeArgs(BaseModel):
    """Arguments of schedule_pause and schedule_delete."""

    schedule: str = Field(
        description="The schedule's id (see schedule_list) or its kind: digest, anomaly_scan, "
        "budget_check, sync."
    )


def parse_change_text(text: str, context: SkillContext) -> ScheduleChangeArgs:
    """The schedule named in chat: an id from the list, or a kind."""
    for schedule in store.list_schedules(context.engine):
        if schedule.id in text:
            return ScheduleChangeArgs(schedule=schedule.id)
    kind = next((name for name, words in _KIND_WORDS if words.search(text)), None)
    if kind is None:
        raise UserError(
            "Which schedule?", "name its kind (the digest) or its id from 'list schedules'"
        )
    return ScheduleChangeArgs(schedule=kind)


def _matching(context: SkillContext, args: ScheduleChangeArgs) -> list[store.Schedule]:
    found = store.list_schedules(context.engine)
    exact = [item for item in found if item.id == args.schedule]
    return exact or [item for item in found if item.kind == args.schedule]


def _plan_change(verb: str) -> Planner:
    def plan(context: SkillContext, args: ScheduleChangeArgs) -> ActionPlan:
        matching = _matching(context, args)
        if not matching:
            return ActionPlan(summary=f"No schedule matches '{args.schedule}'.", preview_only=True)
        return ActionPlan(
            summary=f"{verb} {len(matching)} schedule{'s' if len(matching) != 1 else ''}",
            targets=tuple({"id": item.id, "when": item.when} for item in matching),
        )

    plan.__doc__ = f"{verb} the schedules that match."
    return plan


def _change_skill(
    name: str,
    command: str,
    examples: tuple[str, ...],
    verbs: str,
    verb: str,
    done: str,
    change: Callable[[Engine, str], bool],
    doc: str,
) -> Callable[[SkillContext, ScheduleChangeArgs], Reply]:
    """Declare the skill `name`: `change` each matching schedule (`verbs` trigger it)."""

    def handler(context: SkillContext, args: ScheduleChangeArgs) -> Reply:
        changed = [
            item["id"] for item in context.targets or () if change(context.engine, item["id"])
        ]
        return Reply(
            text=f"{done}: {', '.join(changed) or 'nothing'}.", data={done.lower(): changed}
        )

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return SKILLS.skill(
        name=name,
        args=ScheduleChangeArgs,
        parse_text=parse_change_text,
        command=command,
        examples=examples,
        triggers=(rf"\b({verbs})\b.{{0,40}}\b(digest|schedules?|scan|check|sync)\b",),
        risk="write",
        permission=FINOPS,
        plan=_plan_change(verb),
        policy=SCHEDULE_POLICY,
    )(handler)


schedule_pause = _change_skill(
    "schedule_pause",
    "pause",
    ("pause the digest", "pause the anomaly scan"),
    "pause|stop|suspend|hold",
    "Pause",
    "Paused",
    store.pause,
    "Pause a schedule: it keeps its timetable but does not run until created again.",
)
schedule_delete = _change_skill(
    "schedule_delete",
    "unschedule",
    ("delete the digest schedule", "remove the budget check schedule"),
    "delete|remove|cancel|drop",
    "Delete",
    "Deleted",
    store.delete,
    "Delete a schedule: it will not run again.",
)
