"""Nesting budgets from chat: the guarded path, loops and mixed periods refused, the tree shown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, text

from bot.pipeline import Assistant
from storage import audit
from storage import budgets as store
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.guarded_fakes import grant

NOW = datetime(2026, 11, 29, 12)
FINOPS = "terminal:fin"
LEAD = "terminal:lead"  # finops for team search only


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path_factory.mktemp('nesting') / 'n.db'}")
    ingest_frame(engine, generate_demo_focus(date(2026, 11, 28), days=60), "demo")
    grant(engine, FINOPS, "finops")
    grant(engine, LEAD, "finops", team="search")
    yield engine
    engine.dispose()


@pytest.fixture
def assistant(shared_engine: Engine) -> Assistant:
    with shared_engine.begin() as connection:
        for table in ("budget_links", "budgets"):
            connection.execute(text(f"DELETE FROM {table}"))
        for scope, value, period, amount in (
            ("*", "", "monthly", 300_000),
            ("owner", "search", "monthly", 150_000),
            ("owner", "research", "monthly", 100_000),
            ("owner", "research", "quarterly", 280_000),
            ("sku", "gpt-4o", "monthly", 30_000),
            ("provider", "AWS", "quarterly", 200_000),
        ):
            store.upsert(
                connection, scope=scope, scope_value=value, period=period, amount=amount,
                currency="USD", by="t", at=NOW,
            )  # fmt: skip
    return make_assistant(shared_engine, NOW)


def links(engine: Engine) -> list[tuple[str, str, str]]:
    """(child value, parent scope:value, period) by plain SQL."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.scope_value, p.scope || ':' || p.scope_value, c.period "
                "FROM budget_links l JOIN budgets c ON c.id = l.child_budget_id "
                "JOIN budgets p ON p.id = l.parent_budget_id"
            )
        ).all()
    return sorted(tuple(row) for row in rows)


def test_nesting_from_chat_is_guarded_audited_and_shown_as_a_tree(assistant: Assistant) -> None:
    engine = assistant.engine
    audited = len(audit.query(engine))  # the log is append-only: count from here
    refused = assistant.ask("put the search budget under all spend", "terminal:bob")
    assert refused.reply.is_error and "finops" in refused.reply.text
    # A team's finops holder may nest under their own team's budget, not under the org's.
    assert assistant.ask("put the search budget under all spend", LEAD).reply.is_error
    nested = assistant.ask("make the gpt-4o budget part of the search budget", LEAD)
    assert nested.tool_calls[0] == {
        "name": "budget_link",
        "input": {"child": "gpt-4o", "parent": "search", "period": None},
    }
    assert not nested.reply.is_error, nested.reply.text
    # "research" names a monthly and a quarterly budget: the monthly one matches the parent.
    for ask in ("put the search budget under all spend", "put the research budget under all spend"):
        answer = assistant.ask(ask, FINOPS)
        assert not answer.reply.is_error, answer.reply.text
    assert links(engine) == [
        ("gpt-4o", "owner:search", "monthly"),
        ("research", "*:", "monthly"),
        ("search", "*:", "monthly"),
    ]
    new = audit.query(engine)[audited:]
    assert [e.skill for e in new if e.event == "budget_nested"] == ["budget_link"] * 3
    status = assistant.ask("budget status", "x").reply.text
    tree = status[status.index("Budget tree") :].splitlines()[1:5]
    assert [line.split(":")[0] for line in tree] == [
        "• all spend",
        "    ◦ owner search",
        "        ◦ sku gpt-4o",
        "    ◦ owner research",
    ]


def test_loops_mixed_periods_and_missing_budgets_change_nothing(assistant: Assistant) -> None:
    engine = assistant.engine
    assert not assistant.ask("put the search budget under all spend", FINOPS).reply.is_error
    loop = assistant.ask("put the all spend budget under the search budget", FINOPS).reply
    assert loop.is_error and "loop" in loop.text
    mixed = assistant.ask("put the aws budget under all spend", FINOPS).reply
    assert mixed.is_error and "same period" in mixed.text
    missing = assistant.ask("put the data budget under all spend", FINOPS).reply
    assert not missing.is_error and "No budget for 'data'" in missing.text
    assert links(engine) == [("search", "*:", "monthly")]


def test_unnesting_takes_a_budget_out_once(assistant: Assistant) -> None:
    engine = assistant.engine
    assistant.ask("put the search budget under all spend", FINOPS)
    assistant.ask("nest the monthly research budget under all spend", FINOPS)
    answer = assistant.ask("take the search budget out of all spend", FINOPS)
    assert answer.tool_calls[0]["name"] == "budget_unlink"
    assert not answer.reply.is_error, answer.reply.text
    assert links(engine) == [("research", "*:", "monthly")]
    again = assistant.ask("unnest the search budget", FINOPS).reply
    assert not again.is_error and "not nested" in again.text
    # Two research budgets: which one must be said.
    unclear = assistant.ask("unnest the research budget", FINOPS).reply
    assert unclear.is_error and "names 2 budgets" in unclear.text
    assert not assistant.ask("unnest the monthly research budget", FINOPS).reply.is_error
    assert links(engine) == []
