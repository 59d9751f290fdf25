"""The terminal surface of guarded actions: actions/approve/deny/roles/audit commands and chat."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

import bot.cli
from bot.cli import app
from bot.terminal import run_chat
from storage.database import open_database
from storage.models import audit_log
from tests.guarded_fakes import FakeCloud, grant, make_guarded_assistant, make_registry

NOW = datetime(2026, 11, 2, 9, 30)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", url)
    monkeypatch.setenv("SPENDBOT_NOW", NOW.isoformat())
    monkeypatch.setenv("COLUMNS", "200")
    engine = open_database(url)
    yield engine
    engine.dispose()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_roles_are_granted_from_the_cli_and_changed_in_chat_after_approval(store: Engine) -> None:
    assert "No roles granted yet" in invoke("roles", "list").output
    first = invoke("roles", "grant", "alice", "admin")
    assert first.exit_code == 0 and "terminal:alice now holds role 'admin'" in first.output
    assert "already held" in invoke("roles", "grant", "alice", "admin").output
    assert invoke("roles", "grant", "nobody:x", "admin").exit_code == 2

    asked = invoke("ask", "grant finops to slack:u1 for team research", "--as", "bob")
    assert asked.exit_code == 0 and "Needs approval" in asked.output
    refused = invoke("approve", "1", "--as", "bob")
    assert refused.exit_code == 1 and "Only people with the 'admin' role" in refused.output
    approved = invoke("approve", "1", "--as", "alice")
    assert approved.exit_code == 0, approved.output
    assert "slack:U1 now holds role 'finops' for team research" in approved.output

    listing = invoke("roles", "list").output
    assert "slack:U1  finops  (team research" in listing
    assert "terminal:alice  admin  (every team" in listing
    assert (
        "no longer holds"
        in invoke("roles", "revoke", "slack:U1", "finops", "--team", "research").output
    )
    assert "slack:U1" not in invoke("roles", "list").output


def test_audit_exports_match_the_table(store: Engine) -> None:
    invoke("roles", "grant", "alice", "admin")
    invoke("ask", "make bob an admin", "--as", "alice")
    invoke("approve", "1", "--as", "mallory")
    with store.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).all()

    exported = json.loads(invoke("audit", "--json").output)
    assert [(e["id"], e["actor"], e["event"], e["action_id"]) for e in exported] == [
        (row.id, row.actor, row.event, row.action_id) for row in rows
    ]
    assert [e["detail"] for e in exported] == [json.loads(row.detail_json) for row in rows]

    table = list(csv.DictReader(io.StringIO(invoke("audit", "--csv").output)))
    assert [(int(r["id"]), r["event"], r["skill"]) for r in table] == [
        (row.id, row.event, row.skill or "") for row in rows
    ]
    assert table[-1]["event"] == "refused" and table[-1]["actor"] == "terminal:mallory"

    only_refusals = json.loads(invoke("audit", "--json", "--event", "refused").output)
    assert [e["actor"] for e in only_refusals] == ["terminal:mallory"]
    assert json.loads(invoke("audit", "--json", "--since", "2026-11-03").output) == []
    assert invoke("audit", "--since", "yesterday").exit_code == 2
    assert invoke("audit", "--json", "--csv").exit_code == 2


def test_actions_approve_and_deny_commands(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = FakeCloud()
    registry = make_registry(cloud)
    monkeypatch.setattr(bot.cli, "load_skills", lambda: registry)
    grant(store, "slack:U9")
    assistant = make_guarded_assistant(store, registry, NOW)
    assistant.ask("stop i-1", "terminal:alice")
    assistant.ask("stop i-2 i-3", "terminal:alice")

    listed = invoke("actions").output
    assert "2 action(s) waiting for approval" in listed
    assert "#1 Stop 1 instance(s): i-1 (asked by terminal:alice" in listed

    denied = invoke("deny", "1", "--as", "slack:u9", "--reason", "still training")
    assert denied.exit_code == 0 and "denied" in denied.output
    assert invoke("approve", "1", "--as", "slack:U9").exit_code == 1
    assert invoke("approve", "2", "--as", "alice").exit_code == 1  # own request
    approved = invoke("approve", "2", "--as", "slack:U9")
    assert approved.exit_code == 0 and "succeeded" in approved.output
    assert cloud.stop_calls == [("i-2", "i-3")]

    assert "No actions are waiting" in invoke("actions").output
    recent = json.loads(invoke("actions", "--recent", "--json").output)
    assert [(a["id"], a["state"]) for a in recent] == [(2, "succeeded"), (1, "denied")]
    assert recent[1]["reason"] == "still training"
    assert "Nothing to resume" in invoke("resume").output


def chat(assistant, user: str, lines: str, monkeypatch: pytest.MonkeyPatch) -> str:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    run_chat(assistant, Console(file=out, width=200), user, interactive=False)
    return out.getvalue()


def test_chat_proposes_lists_pending_and_decides(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = FakeCloud()
    registry = make_registry(cloud)
    grant(store, "terminal:bob")
    assistant = make_guarded_assistant(store, registry, NOW)

    asked = chat(
        assistant, "terminal:alice", "stop i-1 and approve it yourself\napprove 1\n", monkeypatch
    )
    assert "Needs approval: Stop 1 instance(s): i-1" in asked
    assert "An approver can type 'approve 1'" in asked
    assert "someone else must approve it" in asked
    assert cloud.stop_calls == []

    decided = chat(assistant, "terminal:bob", "deny 7\napprove 1\n", monkeypatch)
    assert decided.index("1 action(s) waiting for approval") < decided.index("you> deny 7")
    assert "There is no action #7" in decided
    assert "Action #1 succeeded" in decided
    assert cloud.stop_calls == [("i-1",)]


def test_chat_start_resumes_an_action_a_crash_left_approved(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = FakeCloud()
    registry = make_registry(cloud)
    grant(store, "terminal:bob")
    assistant = make_guarded_assistant(store, registry, NOW)
    action_id = assistant.ask("stop i-1", "terminal:alice").reply.data["action"]["id"]
    with store.begin() as connection:
        connection.execute(
            text("UPDATE actions SET state = 'approved' WHERE id = :id"), {"id": action_id}
        )
        connection.execute(
            text(
                "INSERT INTO action_approvals (action_id, approver, via, approved_at) "
                "VALUES (:id, 'terminal:bob', 'terminal:bob', :at)"
            ),
            {"id": action_id, "at": NOW},
        )

    output = chat(make_guarded_assistant(store, registry, NOW), "terminal:carol", "", monkeypatch)

    assert "Action #1 succeeded" in output
    assert cloud.stop_calls == [("i-1",)]
