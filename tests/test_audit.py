"""The audit log: append-only in the database itself, queryable with a skill, untouched by skills."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from skills.catalog import load_skills
from storage import audit
from storage.database import _alembic_config
from storage.models import Base, audit_log
from tests.conftest import make_assistant
from tests.guarded_fakes import FakeCloud, grant, make_guarded_assistant, make_registry

NOW = datetime(2026, 11, 18, 10, 0)  # a Wednesday


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row) for row in connection.execute(select(audit_log).order_by(audit_log.c.id))
        ]


def _some_history(engine: Engine) -> None:
    """Events across two weeks: last week alice asks, bob approves; this week carol denies."""
    cloud = FakeCloud()
    registry = make_registry(cloud)
    grant(engine, "terminal:bob")
    grant(engine, "terminal:carol")
    last_week = make_guarded_assistant(engine, registry, datetime(2026, 11, 10, 15, 0))
    reply = last_week.ask("stop i-1", "terminal:alice").reply
    last_week.approve(reply.data["action"]["id"], "terminal:bob")
    this_week = make_guarded_assistant(engine, registry, datetime(2026, 11, 17, 9, 0))
    reply = this_week.ask("stop i-2", "terminal:alice").reply
    this_week.approve(reply.data["action"]["id"], "terminal:mallory")
    this_week.deny(reply.data["action"]["id"], "terminal:carol", "busy")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "UPDATE audit_log SET detail_json = '{}' WHERE event = 'refused'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE event = 'refused'",
    ],
)
def test_the_database_rejects_changes_to_the_audit_log(engine: Engine, statement: str) -> None:
    _some_history(engine)
    before = _rows(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert _rows(engine) == before


@pytest.mark.postgres
def test_postgres_rejects_truncating_the_audit_log(postgres_url: str) -> None:
    from storage.database import open_database

    engine = open_database(postgres_url)
    with engine.begin() as connection:
        audit.record(connection, at=NOW, actor="x", event="refused")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_log"))
    assert len(_rows(engine)) == 1
    engine.dispose()


def test_who_approved_what_last_week(engine: Engine) -> None:
    _some_history(engine)
    with engine.connect() as connection:
        expected = connection.execute(
            text(
                "SELECT actor, action_id FROM audit_log WHERE event = 'approved' "
                "AND at >= '2026-11-09' AND at < '2026-11-16' ORDER BY id"
            )
        ).all()
    assistant = make_assistant(engine, NOW)

    answer = assistant.ask("who approved what last week?", "terminal:anyone")

    assert answer.tool_calls[0]["name"] == "audit_query"
    reply = answer.reply
    assert [(e["actor"], e["action_id"]) for e in reply.data["events"]] == [
        tuple(r) for r in expected
    ]
    assert expected == [("terminal:bob", 1)]
    assert reply.table.rows[0][1:5] == ["terminal:bob", "approved", "fake_stop", "#1"]


def test_audit_query_filters(engine: Engine) -> None:
    _some_history(engine)
    assistant = make_assistant(engine, NOW)

    refused = assistant.ask("what was refused this week?", "terminal:x").reply
    assert [(e["actor"], e["event"]) for e in refused.data["events"]] == [
        ("terminal:mallory", "refused")
    ]
    assert "can approve" in refused.table.rows[0][5]

    by_carol = assistant.ask("audit log by carol", "terminal:x").reply
    assert [e["event"] for e in by_carol.data["events"]] == ["denied"]

    action = assistant.ask("audit log for action #2", "terminal:x").reply
    assert [e["event"] for e in action.data["events"]] == [
        "requested",
        "refused",
        "denied",
    ]
    typed = assistant.execute(
        assistant.registry.get("audit_query"), {"event": "executed"}, "terminal:x"
    )
    assert [e["action_id"] for e in typed.data["events"]] == [1]
    bad = assistant.execute(assistant.registry.get("audit_query"), {"event": "nope"}, "terminal:x")
    assert bad.is_error and "event must be one of" in bad.text
    assert (
        "No audit events" in assistant.ask("who approved what yesterday?", "terminal:x").reply.text
    )


def test_no_skill_changes_the_audit_log(engine: Engine) -> None:
    """Every catalog skill, through every example, as someone holding every role."""
    _some_history(engine)
    assistant = make_assistant(engine, NOW)
    for role in ("admin", "finops", "owner"):
        grant(engine, "terminal:root", role)
    before = _rows(engine)
    for skill in load_skills():
        for example in skill.examples:
            assistant.ask(example, "terminal:root")
    after = _rows(engine)
    assert after[: len(before)] == before
    assert len(after) > len(before)  # the role skills' own runs were recorded


def test_every_step_of_an_action_is_recorded(engine: Engine) -> None:
    _some_history(engine)
    with engine.connect() as connection:
        recorded = connection.execute(
            text("SELECT action_id, event, actor FROM audit_log ORDER BY id")
        ).all()
    assert [tuple(row) for row in recorded] == [
        (1, "requested", "terminal:alice"),
        (1, "approved", "terminal:bob"),
        (1, "started", "terminal:bob"),
        (1, "executed", "terminal:alice"),
        (2, "requested", "terminal:alice"),
        (2, "refused", "terminal:mallory"),
        (2, "denied", "terminal:carol"),
    ]
    executed = audit.query(engine, events=("executed",))[0].detail
    assert executed["state"] == "succeeded" and executed["approved_by"] == ["terminal:bob"]
    assert executed["done"] == ["i-1"]


def test_unknown_events_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        audit.record(None, at=NOW, actor="x", event="edited")  # type: ignore[arg-type]


def test_the_migration_matches_the_models_and_downgrades(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # Only this migration's tables: other revisions are checked by their own tests.
    mine = ("role_grants", "actions", "action_approvals", "audit_log")
    pattern = re.compile(rf"['<]({'|'.join(mine)})['>]|ix_({'|'.join(mine)})_")
    assert [diff for diff in diffs if pattern.search(repr(diff))] == []
    config = _alembic_config(engine)
    command.downgrade(config, "0001")
    with engine.connect() as connection:
        assert "audit_log" not in set(engine.dialect.get_table_names(connection))
    command.upgrade(config, "head")
    with engine.begin() as connection:
        audit.record(connection, at=NOW - timedelta(days=1), actor="x", event="refused")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
