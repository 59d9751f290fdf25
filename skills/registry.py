"""The skill registry: each skill declared once, exposed as an LLM tool, a command and an intent."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from skills.replies import Reply
from skills.vocabulary import Vocabulary
from storage import audit

Risk = Literal["read", "write", "destructive"]
RISKS: tuple[Risk, ...] = ("read", "write", "destructive")

FAILED_TARGETS = "failed_targets"
"""Reply data key where a guarded handler lists targets it could not change: ``[{"id", "error"}]``."""


@dataclass(frozen=True)
class SkillContext:
    """What a skill may use: the store, the clock, who is asking, and the store's known values.

    When a guarded skill's handler runs an approved action, `targets` holds the planned targets
    that are still valid (re-validated just before the run) and `action_id` the action's number.
    """

    engine: Engine
    now: datetime
    user: str
    vocabulary: Vocabulary
    targets: tuple[dict[str, Any], ...] | None = None
    action_id: int | None = None
    settings: Any = None
    """The process's `bot.settings.Settings`, for skills with configuration; None in bare tests."""
    cost_engine: Engine | None = None
    """FOCUS data queried in place (storage.engines) when configured; None: the store holds it."""

    @property
    def costs(self) -> Engine:
        """The engine cost questions run on: the cost engine when set, else the store."""
        return self.cost_engine or self.engine

    def audit(
        self, connection: Connection, *, event: str, skill: str, detail: dict[str, Any]
    ) -> None:
        """Record `event` of `skill` as done by this context's user, now, under its action."""
        audit.record(
            connection,
            at=self.now,
            actor=self.user,
            event=event,
            skill=skill,
            action_id=self.action_id,
            detail=detail,
        )


@dataclass(frozen=True)
class ActionPlan:
    """What a guarded call would do: shown and stored before anything runs.

    Each target is a JSON-serializable dict with at least an ``id`` (an instance id, a team, a
    user) and whatever a person needs to decide: owner, type, region, hourly cost, evidence.
    """

    summary: str
    targets: tuple[dict[str, Any], ...] = ()
    impact: str = ""
    impact_amount: float | None = None
    currency: str = "USD"
    team: str | None = None
    preview_only: bool = False
    """Answer with this plan and create no action: a dry run, or a call with nothing to change."""

    def __post_init__(self) -> None:
        for target in self.targets:
            if "id" not in target:
                raise ValueError(f"plan target without an 'id': {target!r}")


@dataclass(frozen=True)
class ApprovalPolicy:
    """Who must agree before a guarded skill runs.

    `required`: the call becomes a pending action (always so for destructive skills). Approvers
    hold `approver_role` (the skill's permission by default) for every team or the action's team.
    """

    required: bool
    approvals: int = 1
    allow_self_approval: bool = False
    approver_role: str | None = None
    expires_after: timedelta = field(default=timedelta(hours=24))


Handler = Callable[[SkillContext, Any], Reply]
TextParser = Callable[[str, SkillContext], BaseModel]
Planner = Callable[[SkillContext, Any], ActionPlan]
Revalidator = Callable[[SkillContext, Any, dict[str, Any]], str | None]
"""Re-checks one target just before an approved action runs: a reason to skip it, or None."""


@dataclass(frozen=True)
class Skill:
    """One capability; its handler's docstring is the tool description and the help text."""

    name: str
    handler: Handler
    args_model: type[BaseModel]
    risk: Risk
    permission: str | None
    examples: tuple[str, ...]
    triggers: tuple[re.Pattern[str], ...]
    parse_text: TextParser
    command: str
    plan: Planner | None = None
    revalidate: Revalidator | None = None
    policy: ApprovalPolicy | None = None

    @property
    def guarded(self) -> bool:
        """Whether calls go through authorization, the approval gate and the audit log."""
        return self.risk != "read"

    @property
    def description(self) -> str:
        """The handler's whole docstring."""
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def summary(self) -> str:
        """The first line of the description: the help line."""
        return self.description.splitlines()[0] if self.description else ""

    def tool_schema(self) -> dict[str, Any]:
        """The Anthropic tool definition for this skill."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.args_model.model_json_schema(),
        }

    def trigger_score(self, text: str) -> int:
        """How much of `text` the skill's router patterns match: longer matches are more specific."""
        return sum(
            len(match.group(0)) for pattern in self.triggers if (match := pattern.search(text))
        )


class Registry:
    """Skills by name, filled by the `skill` decorator as skill modules are imported."""

    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}

    def skill(
        self,
        *,
        name: str,
        args: type[BaseModel],
        parse_text: TextParser,
        command: str,
        examples: tuple[str, ...],
        triggers: tuple[str, ...],
        risk: Risk = "read",
        permission: str | None = None,
        plan: Planner | None = None,
        revalidate: Revalidator | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler as the skill `name`.

        A `write` or `destructive` skill needs a `permission` (the role that may run or approve
        it) and a `plan` that says what a call would change; `revalidate` optionally re-checks
        each target before an approved call runs. `policy` defaults to: destructive calls always
        wait for one approval by someone other than the requester, within 24 hours; write calls
        run at once for holders of the permission.
        """
        policy = _checked_policy(name, risk, permission, plan, revalidate, policy)

        def register(handler: Handler) -> Handler:
            if name in self._skills:
                raise ValueError(f"skill {name!r} is declared twice")
            self._skills[name] = Skill(
                name=name,
                handler=handler,
                args_model=args,
                risk=risk,
                permission=permission,
                examples=examples,
                triggers=tuple(re.compile(pattern, re.IGNORECASE) for pattern in triggers),
                parse_text=parse_text,
                command=command,
                plan=plan,
                revalidate=revalidate,
                policy=policy,
            )
            return handler

        return register

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __len__(self) -> int:
        return len(self._skills)

    def order_by_module(self, modules: Sequence[str]) -> None:
        """Put skills in the order of their modules in `modules`, declaration order within one.

        The router gives ties to the skill listed first, so this order must not depend on which
        module some other import happened to load first.
        """
        rank = {module: index for index, module in enumerate(modules)}
        ordered = sorted(
            self._skills.values(), key=lambda skill: rank.get(skill.handler.__module__, len(rank))
        )
        self._skills = {skill.name: skill for skill in ordered}

    def get(self, name: str) -> Skill | None:
        """The skill called `name`, or None."""
        return self._skills.get(name)

    def by_command(self, word: str) -> Skill | None:
        """The skill whose slash-command word is `word` (``/spend help`` -> help)."""
        return next((skill for skill in self if skill.command == word.lower()), None)

    def describe(self) -> str:
        """One line per skill with an example: what is shown when a message is not understood."""
        return "\n".join(f"• {skill.summary} e.g. “{skill.examples[0]}”" for skill in self)


def _checked_policy(
    name: str,
    risk: str,
    permission: str | None,
    plan: Planner | None,
    revalidate: Revalidator | None,
    policy: ApprovalPolicy | None,
) -> ApprovalPolicy | None:
    """The effective approval policy of a skill, refusing inconsistent declarations."""
    if risk not in RISKS:
        raise ValueError(f"skill {name!r}: risk must be one of {RISKS}, not {risk!r}")
    if risk == "read":
        if plan or revalidate or policy:
            raise ValueError(
                f"skill {name!r}: only write and destructive skills take a plan/policy"
            )
        return None
    if not permission:
        raise ValueError(f"skill {name!r}: a {risk} skill needs a permission")
    if plan is None:
        raise ValueError(f"skill {name!r}: a {risk} skill needs a plan")
    policy = policy or ApprovalPolicy(required=risk == "destructive")
    if risk == "destructive" and not policy.required:
        raise ValueError(f"skill {name!r}: destructive skills always need an approval")
    if policy.approvals < 1 or policy.expires_after <= timedelta(0):
        raise ValueError(f"skill {name!r}: approvals must be >= 1 and expiry positive")
    if policy.approver_role is None:
        policy = replace(policy, approver_role=permission)
    return policy


SKILLS = Registry()
