"""The README's "What you can ask" examples: each routes offline to the skill it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.router import choose_skill
from skills.catalog import load_skills

README = Path(__file__).resolve().parent.parent / "README.md"
CODE = re.compile(r"`([^`]+)`")


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of any level."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#+ ", text[start:], flags=re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def documented() -> list[tuple[str, str]]:
    """(example, skill) pairs: the ask table's rows, then the extra spend phrasings."""
    body = section(README.read_text(encoding="utf-8"), "### What you can ask")
    pairs = []
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and CODE.search(cells[2]):
            skill = CODE.search(cells[2]).group(1)
            pairs += [(example, skill) for example in CODE.findall(cells[1])]
    phrasings = body[body.index("More spend phrasings:") :].split("\n\n")[0]
    pairs += [(example, "spend_query") for example in CODE.findall(phrasings)]
    return pairs


EXAMPLES = documented()


def test_every_skill_has_an_example_in_the_readme():
    assert {skill for _, skill in EXAMPLES} == {skill.name for skill in load_skills()}


@pytest.mark.parametrize(("example", "skill"), EXAMPLES)
def test_example_routes_to_its_skill(example, skill):
    chosen = choose_skill(example, load_skills())
    assert chosen is not None and chosen.name == skill
