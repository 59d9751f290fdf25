"""Lint of the whole skill registry: every skill is fully declared and reachable."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from bot.router import choose_skill
from skills.catalog import SKILL_MODULES, load_skills
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


def test_skill_order_follows_the_catalog_whatever_was_imported_first() -> None:
    """Router ties go to the first skill; importing a skill module early must not change that."""
    script = (
        "import skills.anomalies, skills.gpus\n"
        "from skills.catalog import load_skills\n"
        "print(' '.join(skill.name for skill in load_skills()))\n"
    )
    names = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    by_name = {skill.name: skill for skill in load_skills()}
    modules = [by_name[name].handler.__module__ for name in names]
    assert [SKILL_MODULES.index(module) for module in modules] == sorted(
        SKILL_MODULES.index(module) for module in modules
    )
    assert names.index("spend_query") < names.index("anomaly_list")
