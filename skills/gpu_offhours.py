"""Off-hours GPU schedules: at the start of off hours, propose stopping the tagged machines.

Each fire creates a guarded `gpu_stop` request for the running GPU instances carrying the tag,
so the usual approval and last idleness check apply; spendbot never starts machines again.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field, field_validator

from skills.errors import UserError
from skills.gpu_fleet import open_fleet
from skills.registry import SKILLS, ActionPlan, SkillContext
from skills.replies import Reply
from skills.schedules import (
    DAY_NAMES,
    FINOPS,
    SCHEDULE_POLICY,
    Day,
    clock_time,
    optional_target,
    zone_name,
)
from storage import schedules as store

KIND = "gpu_offhours"
WEEKDAYS: list[Day] = ["mon", "tue", "wed", "thu", "fri"]
ORDER: list[str] = list(DAY_NAMES)
_HOURS = re.compile(
    r"\b([01]?\d|2[0-3])[:.h]([0-5]\d)\s*(?:-|–|to|until)\s*([01]?\d|2[0-3])[:.h]([0-5]\d)\b"
)
_DAYS = re.compile(
    r"\b(mon|tue|wed|thu|fri|sat|sun)\w*\s*(?:-|–|to)\s*(mon|tue|wed|thu|fri|sat|sun)\w*", re.I
)
_TAG = re.compile(r"\b([\w.:/-]+)=([\w.:/-]+)\b")
_NAMED = re.compile(r"\b(?:the\s+)?([\w-]+)\s+gpu\s+(?:instances?|machines?|boxes)\b", re.I)
_ZONE = re.compile(r"\b(UTC|[A-Z][a-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?)\b")


class GpuOffhoursArgs(BaseModel):
    """Arguments of gpu_offhours_create."""

    tag: str = Field(description="KEY=VALUE tag of the instances, e.g. env=dev.")
    start: str = Field(description="Local time off hours begin (HH:MM): the request is made then.")
    end: str = Field(description="Local time off hours end (HH:MM), shown with the schedule.")
    days: list[Day] = Field(default_factory=lambda: list(WEEKDAYS), description="Days it runs.")
    timezone: str = Field("UTC", description="IANA time zone of the times, e.g. Europe/Berlin.")
    target: str | None = Field(
        None, description="Where requests for machines whose owner has no contact go: #channel."
    )

    _time = field_validator("start", "end")(clock_time)
    _zone = field_validator("timezone")(zone_name)
    _target = field_validator("target")(optional_target)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not _TAG.fullmatch(value.strip()):
            raise ValueError("write the tag as KEY=VALUE, e.g. env=dev")
        return value.strip()

    @property
    def schedule_id(self) -> str:
        """One off-hours schedule per tag: the same tag again replaces it."""
        return f"{KIND}:{self.tag}"

    @property
    def when(self) -> str:
        """The timetable in words."""
        days = ", ".join(DAY_NAMES[day][:3] for day in self.days)
        return f"{self.start}-{self.end} {days} {self.timezone}"

    def trigger(self) -> CronTrigger:
        """Fires when off hours begin, on each of the days."""
        hour, minute = (int(part) for part in self.start.split(":"))
        days = ",".join(sorted(set(self.days), key=ORDER.index))
        return CronTrigger(
            day_of_week=days, hour=hour, minute=minute, timezone=ZoneInfo(self.timezone)
        )


def _day_range(first: str, last: str) -> list[str]:
    """``fri``, ``mon`` -> fri, sat, sun, mon: a range may wrap around the week."""
    start, stop = ORDER.index(first.lower()[:3]), ORDER.index(last.lower()[:3])
    return [ORDER[(start + step) % 7] for step in range((stop - start) % 7 + 1)]


def parse_offhours_text(text: str, context: SkillContext) -> GpuOffhoursArgs:
    """'stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin': `dev` means env=dev."""
    hours = _HOURS.search(text)
    tag = _TAG.search(text)
    named = _NAMED.search(text)
    tag_text = tag.group(0) if tag else f"env={named.group(1).lower()}" if named else None
    if hours is None or tag_text is None:
        raise UserError(
            "Which machines, and when?",
            "e.g. 'stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin' (env=dev) or "
            "'stop GPU instances tagged team=lab 20:00-07:00'",
        )
    values: dict = {
        "tag": tag_text,
        "start": f"{hours.group(1)}:{hours.group(2)}",
        "end": f"{hours.group(3)}:{hours.group(4)}",
    }
    if days := _DAYS.search(text):
        values["days"] = _day_range(days.group(1), days.group(2))
    elif re.search(r"\b(daily|every\s+day)\b", text, re.I):
        values["days"] = ORDER
    if zone := _ZONE.search(text):
        values["timezone"] = zone.group(1)
    if channel := re.search(r"(?<![\w=])(#[\w-]+|(?:slack|teams):\S+)", text):
        values["target"] = channel.group(1)
    try:
        return GpuOffhoursArgs(**values)
    except ValueError as error:
        raise UserError(
            str(error).splitlines()[-1].strip(), "e.g. 'stop the dev GPU instances 19:00-08:00'"
        ) from None


def tagged_machines(context: SkillContext, tag: str) -> list[str]:
    """Running GPU instances carrying the KEY=VALUE `tag`."""
    key, _, value = tag.partition("=")
    fleet = open_fleet(context.settings)
    if fleet is None:
        return []
    return [i.id for i in fleet.instances() if i.state == "running" and i.tags.get(key) == value]


def plan_offhours(context: SkillContext, args: GpuOffhoursArgs) -> ActionPlan:
    """One off-hours schedule, created or replaced."""
    previous = store.get(context.engine, args.schedule_id)
    return ActionPlan(
        summary=f"{'Replace' if previous else 'Create'} off hours for GPU instances tagged "
        f"{args.tag}: {args.when}",
        targets=({"id": args.schedule_id, "when": args.when, "target": args.target},),
        impact=f"at {args.start} a stop request for the idle ones, approved as usual",
    )


@SKILLS.skill(
    name="gpu_offhours_create",
    args=GpuOffhoursArgs,
    parse_text=parse_offhours_text,
    command="gpu-offhours",
    examples=(
        "stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin",
        "stop GPU instances tagged team=lab 20:00-07:00 every day",
    ),
    triggers=(
        r"\b(stop|shut ?down|turn off|power off)\b.*\bgpus?\b.*"
        r"\d{1,2}[:.h]\d{2}\s*(?:-|–|to|until)\s*\d{1,2}[:.h]\d{2}.*",
    ),
    risk="write",
    permission=FINOPS,
    plan=plan_offhours,
    policy=SCHEDULE_POLICY,
)
def gpu_offhours_create(context: SkillContext, args: GpuOffhoursArgs) -> Reply:
    """Off hours for tagged GPU instances: when they begin, ask to stop the idle ones.

    Each fire creates a guarded stop request (approval, then a last idleness check) for the
    running GPU instances with the tag, posted to their owners; they are not started again.
    """
    schedule = store.add(
        context.engine,
        args.schedule_id,
        kind=KIND,
        target=args.target,
        args={"tag": args.tag, "end": args.end},
        trigger=args.trigger(),
        when=args.when,
        now=context.now,
    )
    next_run = f"{schedule.next_run:%Y-%m-%d %H:%M} UTC" if schedule.next_run else "never"
    return Reply(
        text=f"Off hours for GPU instances tagged {args.tag}: {args.when}. First stop request: "
        f"{next_run}.",
        data={"schedule": schedule.as_dict()},
    )
