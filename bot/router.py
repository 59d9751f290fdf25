"""The offline router: maps a message to a skill and its arguments, deterministically."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from skills.registry import Registry, Skill, SkillContext


@dataclass(frozen=True)
class Routed:
    """The skill a message asks for, with its parsed arguments."""

    skill: Skill
    args: BaseModel


def choose_skill(text: str, registry: Registry) -> Skill | None:
    """The skill whose router patterns match the most of `text`; the first declared wins ties."""
    scored = [(skill.trigger_score(text), index, skill) for index, skill in enumerate(registry)]
    best = max(scored, key=lambda item: (item[0], -item[1]), default=None)
    return best[2] if best and best[0] > 0 else None


def route(
    text: str, registry: Registry, context: SkillContext, *, command: bool = False
) -> Routed | None:
    """Route a chat message, or with `command` the text after ``/spend``; None when nothing matches.

    In a command a leading command word (``help``, ``data``) picks its skill directly, as in
    ``/spend help``. Parsing errors (an unknown service, a bad date) propagate as UserError.
    """
    words = text.strip().split(maxsplit=1)
    skill = registry.by_command(words[0]) if command and words else None
    if skill is not None:
        return Routed(skill, skill.parse_text(words[1] if len(words) > 1 else "", context))
    skill = choose_skill(text, registry)
    if skill is None:
        return None
    return Routed(skill, skill.parse_text(text, context))
