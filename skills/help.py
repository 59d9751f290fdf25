"""The help skill: what spendbot can answer, with examples taken from each skill's declaration."""

from __future__ import annotations

from pydantic import BaseModel, Field

from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table


class HelpArgs(BaseModel):
    """Arguments of help."""

    topic: str | None = Field(None, description="A skill name or command word to explain.")


def parse_help_text(text: str, context: SkillContext) -> HelpArgs:
    """Help on the skill named in the message, if any."""
    words = {word.strip("?!.,").lower() for word in text.split()}
    named = next(
        (
            skill.name
            for skill in SKILLS
            if skill.name in words or skill.command in words - {"help"}
        ),
        None,
    )
    return HelpArgs(topic=named)


@SKILLS.skill(
    name="help",
    args=HelpArgs,
    parse_text=parse_help_text,
    command="help",
    examples=("help", "what can you do?", "help spend"),
    triggers=(r"^\s*help\b.*|\bwhat can you\b|\bhow do i\b|\bexamples?\b|\bcommands\b",),
)
def help_skill(context: SkillContext, args: HelpArgs) -> Reply:
    """What spendbot can answer, with example questions."""
    chosen = [skill for skill in SKILLS if args.topic in (None, skill.name, skill.command)]
    rows = [
        [skill.name, f"/spend {skill.command}", skill.summary, " · ".join(skill.examples[:3])]
        for skill in chosen
    ]
    text = "Ask me about cloud and AI spend in plain words, or use /spend <question>."
    return Reply(
        text=text,
        table=Table(["Skill", "Command", "What it does", "Examples"], rows),
        data={
            "skills": [
                {"name": skill.name, "summary": skill.summary, "examples": list(skill.examples)}
                for skill in chosen
            ]
        },
    )
