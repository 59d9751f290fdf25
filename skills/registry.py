"""The skill registry: each skill declared once, exposed as an LLM tool, a command and an intent."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine

from skills.replies import Reply
from skills.vocabulary import Vocabulary

Risk = Literal["read", "write", "destructive"]


@dataclass(frozen=True)
class SkillContext:
    """What a skill may use: the store, the clock, who is asking, and the store's known values."""

    engine: Engine
    now: datetime
    user: str
    vocabulary: Vocabulary


Handler = Callable[[SkillContext, Any], Reply]
TextParser = Callable[[str, SkillContext], BaseModel]


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
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler as the skill `name`."""

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
            )
            return handler

        return register

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __len__(self) -> int:
        return len(self._skills)

    def get(self, name: str) -> Skill | None:
        """The skill called `name`, or None."""
        return self._skills.get(name)

    def by_command(self, word: str) -> Skill | None:
        """The skill whose slash-command word is `word` (``/spend help`` -> help)."""
        return next((skill for skill in self if skill.command == word.lower()), None)

    def describe(self) -> str:
        """One line per skill with an example: what is shown when a message is not understood."""
        return "\n".join(f"• {skill.summary} e.g. “{skill.examples[0]}”" for skill in self)

    def tools(self) -> list[dict[str, Any]]:
        """Anthropic tool definitions for every skill."""
        return [skill.tool_schema() for skill in self]


SKILLS = Registry()
