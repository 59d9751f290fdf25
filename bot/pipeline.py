"""The one execution path every front door uses: route, validate, authorize, gate, run, reply."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from bot.approvals import Approvals
from bot.observer import Observer
from bot.router import route
from bot.settings import Settings
from skills.errors import UserError
from skills.registry import Registry, Skill, SkillContext
from skills.replies import Reply
from skills.vocabulary import Vocabulary
from storage.engines import open_cost_engine

if TYPE_CHECKING:
    from bot.llm import LLMAgent

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """A reply to one message, with the tool calls that produced it."""

    reply: Reply
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _outcome(reply: Reply) -> str:
    """How a skill call ended, for metrics: ok, pending (needs approval), error or incident."""
    if "incident" in reply.data:
        return "incident"
    if reply.data.get("needs_approval"):
        return "pending"
    return "error" if reply.is_error else "ok"


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "arguments"
    return f"{where}: {first['msg']}"


class Assistant:
    """Answers messages through the skills; one per process, shared by every transport."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        registry: Registry,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = registry
        self.observer = observer or Observer()
        self.cost_engine = open_cost_engine(settings.cost_engine, settings.focus_path)
        self.vocabulary = Vocabulary(self.cost_engine or engine)
        self.approvals = Approvals(engine, registry, settings.current_time, self.context)
        self.llm: LLMAgent | None = None
        if settings.anthropic_api_key is not None:
            from bot.llm import LLMAgent  # imports the Anthropic SDK only when it is used

            self.llm = LLMAgent(self)

    def context(self, user: str) -> SkillContext:
        """The context a skill runs in for `user`, at the current (or pinned) time."""
        return SkillContext(
            self.engine,
            self.settings.current_time(),
            user,
            self.vocabulary,
            settings=self.settings,
            cost_engine=self.cost_engine,
        )

    def execute(
        self,
        skill: Skill,
        args: BaseModel | dict[str, Any],
        user: str,
        *,
        groups: tuple[str, ...] = (),
        request_key: str | None = None,
    ) -> Reply:
        """Validate and run one skill call, reporting it to the observer; never raises.

        A read skill runs. A write or destructive one goes through `Approvals.call`: it runs
        for a holder of its role when its policy needs no approval, is refused, or becomes a
        pending action that only `approve` (a person's decision) can run. `groups` are the
        user's group identities where the transport knows them; `request_key` (a transport's
        event id) makes a retried request find its first action.
        """
        started = time.perf_counter()
        reply = self._execute(skill, args, user, groups, request_key)
        self.observer.skill_ran(skill.name, _outcome(reply), time.perf_counter() - started)
        return reply

    def _execute(
        self,
        skill: Skill,
        args: BaseModel | dict[str, Any],
        user: str,
        groups: tuple[str, ...],
        request_key: str | None,
    ) -> Reply:
        try:
            model = (
                args
                if isinstance(args, skill.args_model)
                else skill.args_model.model_validate(args)
            )
            if skill.guarded:
                return self.approvals.call(
                    skill, model, user, groups=groups, request_key=request_key
                )
            return skill.handler(self.context(user), model)
        except ValidationError as error:
            return Reply(
                text=f"Invalid arguments for {skill.name}: {_validation_message(error)}",
                is_error=True,
            )
        except UserError as error:
            return self.user_error(error)
        except Exception:
            return self.incident(f"skill {skill.name} failed")

    def approve(self, action_id: int, approver: str, groups: tuple[str, ...] = ()) -> Reply:
        """A person approves a pending action; it runs, once, when it has enough approvals."""
        try:
            return self.approvals.approve(action_id, approver, groups)
        except Exception:
            return self.incident(f"approving action {action_id} failed")

    def deny(
        self, action_id: int, actor: str, reason: str | None = None, groups: tuple[str, ...] = ()
    ) -> Reply:
        """A person denies (or its requester withdraws) a pending action; it never runs."""
        try:
            return self.approvals.deny(action_id, actor, reason, groups)
        except Exception:
            return self.incident(f"denying action {action_id} failed")

    def resume(self) -> list[Reply]:
        """At start-up: run approved actions nobody claimed, report interrupted ones."""
        try:
            return self.approvals.resume()
        except Exception:
            return [self.incident("resuming actions failed")]

    def ask(
        self, text: str, user: str, *, command: bool = False, conversation: str | None = None
    ) -> Answer:
        """Answer a chat message (or, with `command`, the text of a ``/spend`` command).

        With an Anthropic API key a message goes through the LLM tool layer (`bot.llm`), in
        `conversation` (a thread or session key, for follow-ups); commands, and every message
        when no key is set, go through the offline router.
        """
        if self.llm is not None and not command:
            answer = self.llm.ask(text, user, conversation)
            if "llm" in answer.reply.data:
                self.observer.llm_used(answer.reply.data["llm"])
            return answer
        return self.ask_offline(text, user, command=command)

    def ask_offline(self, text: str, user: str, *, command: bool = False) -> Answer:
        """Answer through the offline router: deterministic, no API calls."""
        try:
            routed = route(text, self.registry, self.context(user), command=command)
        except UserError as error:
            return Answer(self.user_error(error))
        except Exception:
            return Answer(self.incident("routing failed"))
        if routed is None:
            return Answer(self.not_understood())
        reply = self.execute(routed.skill, routed.args, user)
        call = {"name": routed.skill.name, "input": routed.args.model_dump(mode="json")}
        return Answer(reply, [call])

    @staticmethod
    def user_error(error: UserError) -> Reply:
        """A user-facing error shown as-is, with its hint."""
        text = error.message + (f"\nHint: {error.hint}" if error.hint else "")
        return Reply(text=text, is_error=True, data={"error": error.message, "hint": error.hint})

    @staticmethod
    def incident(what: str) -> Reply:
        """Log an unexpected failure with an incident id and apologise with that id."""
        incident_id = uuid.uuid4().hex[:8]
        log.exception("%s (incident %s)", what, incident_id)
        return Reply(
            text=f"Sorry, something went wrong on my side (incident {incident_id}). It has been logged.",
            is_error=True,
            data={"incident": incident_id},
        )

    def not_understood(self) -> Reply:
        """Say what can be asked instead of guessing."""
        return Reply(
            text="I didn't understand that. Here is what I can answer:\n"
            + self.registry.describe(),
            is_error=True,
            data={"error": "not understood"},
        )
