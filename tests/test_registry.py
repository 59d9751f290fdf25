"""Lint of the whole skill registry: every skill is fully declared and reachable."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from bot.router import choose_skill
from skills.catalog import load_skills
from skills.registry import Skill
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.guarded_fakes import grant

SKILLS = list(load_skills())


def test_names_and_commands_are_unique() -> None:
    names = [skill.name for skill in SKILLS]
    commands = [skill.command for skill in SKILLS]
    assert len(names) == len(set(names))
    assert len(commands) == len(set(commands))


@pytest.mark.parametrize("skill", SKILLS, ids=lambda skill: skill.name)
def test_skill_is_fully_declared(skill: Skill) -> None:
    assert skill.summary and skill.summary.endswith(".")
    assert skill.args_model.__doc__
    assert len(skill.examples) >= 2
    assert skill.risk in ("read", "write", "destructive")
    if skill.risk != "read":
        assert skill.permission
    schema = skill.tool_schema()
    assert schema["input_schema"]["type"] == "object"
    json.dumps(schema)
    assert all(
        name.replace("_", "").isalnum() for name in schema["input_schema"].get("properties", {})
    )


@pytest.mark.parametrize(
    ("skill", "example"),
    [(skill, example) for skill in SKILLS for example in skill.examples],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_example_routes_to_its_skill(skill: Skill, example: str) -> None:
    assert choose_skill(example, load_skills()) is skill


@pytest.mark.parametrize("skill", SKILLS, ids=lambda skill: skill.name)
def test_every_example_runs_without_error(sqlite_engine: Engine, skill: Skill) -> None:
    ingest_frame(sqlite_engine, generate_demo_focus(date(2026, 11, 28), days=90), "demo")
    assistant = make_assistant(sqlite_engine, datetime(2026, 11, 29, 12))
    # Write skills that a finops holder runs at once (owner_assign, budget_set) answer here;
    # for everyone else they are refused, which tests/test_owners.py checks.
    grant(sqlite_engine, "test:lint", "finops")
    for example in skill.examples:
        answer = assistant.ask(example, "test:lint")
        assert not answer.reply.is_error, (example, answer.reply.text)
        assert answer.tool_calls[0]["name"] == skill.name
