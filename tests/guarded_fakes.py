"""A test-only registry with a fake destructive skill over a fake cloud that counts every stop."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.registry import FAILED_TARGETS, ActionPlan, ApprovalPolicy, Registry, SkillContext
from skills.replies import Reply
from storage import roles


class Crash(BaseException):
    """Stands in for the process dying: nothing in the pipeline catches a BaseException."""


@dataclass
class FakeCloud:
    """Instances that can be stopped; counts every stop call, thread-safely."""

    running: set[str] = field(default_factory=lambda: {"i-1", "i-2", "i-3"})
    excluded: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)
    stop_calls: list[tuple[str, ...]] = field(default_factory=list)
    crash_next: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, ids: tuple[str, ...]) -> list[str]:
        """Stop `ids`; the ones that could not be stopped."""
        with self.lock:
            self.stop_calls.append(ids)
            if self.crash_next:
                self.crash_next = False
                raise Crash
            failed = [i for i in ids if i in self.broken]
            self.running -= set(ids) - set(failed)
            return failed


class StopArgs(BaseModel):
    """Arguments of fake_stop."""

    instances: list[str] = Field(min_length=1)
    note: str = ""


class GrantArgs(BaseModel):
    """Arguments of fake_label."""

    label: str


def parse_stop_text(text: str, context: SkillContext) -> StopArgs:
    """Instance ids in the text; the rest of the message becomes the note."""
    return StopArgs(instances=re.findall(r"\bi-\w+", text), note=text)


def make_registry(cloud: FakeCloud, *, approvals: int = 1, self_approval: bool = False) -> Registry:
    """A registry with `fake_stop` (destructive) and `fake_label` (write, role `finops`)."""
    registry = Registry()

    def plan(context: SkillContext, args: StopArgs) -> ActionPlan:
        return ActionPlan(
            summary=f"Stop {len(args.instances)} instance(s): {', '.join(args.instances)}",
            targets=tuple(
                {"id": i, "owner": "research", "type": "p5.48xlarge", "hourly_cost": 98.32}
                for i in args.instances
            ),
            impact=f"saves about ${98.32 * len(args.instances):.2f}/hour",
            impact_amount=98.32 * len(args.instances),
            team="research",
        )

    def revalidate(context: SkillContext, args: StopArgs, target: dict) -> str | None:
        if target["id"] in cloud.excluded:
            return "re-tagged as excluded"
        if target["id"] not in cloud.running:
            return "already stopped"
        return None

    @registry.skill(
        name="fake_stop",
        args=StopArgs,
        parse_text=parse_stop_text,
        command="stop",
        examples=("stop i-1",),
        triggers=(r"\bstop\b",),
        risk="destructive",
        permission="finops",
        plan=plan,
        revalidate=revalidate,
        policy=ApprovalPolicy(
            required=True, approvals=approvals, allow_self_approval=self_approval
        ),
    )
    def fake_stop(context: SkillContext, args: StopArgs) -> Reply:
        """Stop instances (test double)."""
        assert context.targets is not None
        failed = cloud.stop(tuple(target["id"] for target in context.targets))
        return Reply(
            text=f"Stopped {len(context.targets) - len(failed)} instance(s).",
            data={FAILED_TARGETS: [{"id": i, "error": "API refused"} for i in failed]},
        )

    labels: list[str] = []

    @registry.skill(
        name="fake_label",
        args=GrantArgs,
        parse_text=lambda text, context: GrantArgs(label=text),
        command="label",
        examples=("label x",),
        triggers=(r"\blabel\b",),
        risk="write",
        permission="finops",
        plan=lambda context, args: ActionPlan(summary=f"Add label {args.label}"),
    )
    def fake_label(context: SkillContext, args: GrantArgs) -> Reply:
        """Add a label (test double)."""
        labels.append(args.label)
        return Reply(text=f"Labelled {args.label}.")

    registry.labels = labels  # type: ignore[attr-defined]
    return registry


def make_guarded_assistant(engine: Engine, registry: Registry, now: datetime) -> Assistant:
    """An assistant over the test registry with the clock pinned at `now`."""
    return Assistant(Settings(database_url=str(engine.url), now=now), engine, registry)


def grant(engine: Engine, identity: str, role: str = "finops", team: str = "*") -> None:
    """Give `identity` a role directly in the store."""
    with engine.begin() as connection:
        roles.grant(connection, identity, role, team, by="test", at=datetime(2026, 1, 1))
