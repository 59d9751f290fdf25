"""The one execution path every front door uses: route, validate, run, reply."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from bot.router import route
from bot.settings import Settings
from skills.errors import UserError
from skills.registry import Registry, Skill, SkillContext
from skills.replies import Reply
from skills.vocabulary import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """A reply to one message, with the tool calls that produced it."""

    reply: Reply
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "arguments"
    return f"{where}: {first['msg']}"


class Assistant:
    """Answers messages through the skills; one per process, shared by every transport."""

    def __init__(self, settings: Settings, engine: Engine, registry: Registry) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = registry
        self.vocabulary = Vocabulary(engine)

    def context(self, user: str) -> SkillContext:
        """The context a skill runs in for `user`, at the current (or pinned) time."""
        return SkillContext(self.engine, self.settings.current_time(), user, self.vocabulary)

    def execute(self, skill: Skill, args: BaseModel | dict[str, Any], user: str) -> Reply:
        """Validate and run one skill call; errors become replies, never exceptions."""
        try:
            model = (
                args
                if isinstance(args, skill.args_model)
                else skill.args_model.model_validate(args)
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

    def ask(self, text: str, user: str, *, command: bool = False) -> Answer:
        """Answer a chat message (or, with `command`, the text of a ``/spend`` command)."""
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
