"""Adaptive Cards for replies: valid against the Adaptive Card 1.5 schema, figures checked by SQL."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from sqlalchemy import Engine, text

from bot.pipeline import Assistant
from bot.render_slack import headline
from bot.render_teams import CHART_BUDGET, MAX_ROWS, chart_image, reply_card
from bot.reply_charts import chart_for
from bot.settings import Settings
from skills.catalog import load_skills
from skills.money import format_money
from skills.replies import Reply, Table
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.guarded_fakes import FakeCloud, make_registry

NOW = datetime(2026, 11, 29, 12, 0)
SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "schemas" / "adaptive-card-1.5.json").read_text()
)
VALIDATOR = jsonschema.Draft6Validator(SCHEMA)


def assert_valid_card(card: dict[str, Any]) -> None:
    """The card passes the Adaptive Card 1.5 schema and stays under Teams' message size."""
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(card)]
    assert errors == []
    assert card["version"] == "1.5"
    assert len(json.dumps(card)) < 28_000


def elements(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [element for element in card["body"] if element["type"] == kind]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("teams-render") / "demo.db"
    engine = open_database(f"sqlite:///{path}")
    ingest_frame(engine, generate_demo_focus(date(2026, 11, 28), days=45), "demo data")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def assistant(engine: Engine) -> Assistant:
    settings = Settings(database_url=str(engine.url), now=NOW)
    return Assistant(settings, engine, load_skills())


def october_total(engine: Engine) -> float:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT sum(effective_cost) FROM cost_line_items "
                "WHERE charge_period_start >= '2026-10-01' AND charge_period_start < '2026-11-01'"
            )
        ).scalar_one()


@pytest.mark.parametrize(
    "question",
    [
        "what did we spend last month?",
        "spend last month by team",
        "top 5 services last month",
        "daily spend last 14 days",
        "GPU spend by team this month compared to last month",
        "help",
        "actions",
        "blah blah nonsense",
    ],
)
def test_every_answer_renders_a_valid_card(assistant: Assistant, question: str) -> None:
    reply = assistant.ask(question, "teams:alice").reply
    card = reply_card(reply, chart=chart_for(reply, headline(reply)))
    assert_valid_card(card)
    assert card["body"][0]["style"] == "heading"
    assert "actions" not in card


def test_a_total_leads_with_the_figure_and_states_metric_period_and_filters(
    assistant: Assistant, engine: Engine
) -> None:
    reply = assistant.ask("what did we spend last month?", "teams:alice").reply
    card = reply_card(reply)
    assert_valid_card(card)
    figure = card["body"][1]
    assert figure["weight"] == "bolder"
    assert format_money(october_total(engine)) in figure["text"]
    (facts,) = elements(card, "FactSet")
    pairs = {fact["title"]: fact["value"] for fact in facts["facts"]}
    assert pairs["Metric"].startswith("EffectiveCost")
    assert pairs["Period"].startswith("2026-10-01 to 2026-10-31")
    assert pairs["Filters"] == "none"


def test_a_breakdown_becomes_a_table_with_a_chart(assistant: Assistant, engine: Engine) -> None:
    reply = assistant.ask("spend last month by team", "teams:alice").reply
    card = reply_card(reply, chart=chart_for(reply, headline(reply)))
    assert_valid_card(card)
    (table,) = elements(card, "Table")
    header, *rows = table["rows"]
    cell = lambda row, i: row["cells"][i]["items"][0]["text"]  # noqa: E731
    assert [cell(header, i) for i in range(3)] == ["Tag team", "Amount", "Share"]
    with engine.connect() as connection:
        by_team = dict(
            connection.execute(
                text(
                    "SELECT t.value, sum(c.effective_cost) FROM cost_line_items c "
                    "JOIN cost_tags t ON t.line_item_id = c.id AND t.key = 'team' "
                    "WHERE c.charge_period_start >= '2026-10-01' "
                    "AND c.charge_period_start < '2026-11-01' GROUP BY t.value"
                )
            ).all()
        )
    shown = {cell(row, 0): cell(row, 1) for row in rows}
    for team, amount in by_team.items():
        assert shown[team] == format_money(amount)
    (image,) = elements(card, "Image")
    png = base64.b64decode(image["url"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and Image.open(io.BytesIO(png)).width == 800


def test_a_two_column_table_is_a_fact_set_and_long_tables_are_cut() -> None:
    two = Table(
        columns=["Provider", "Amount"],
        rows=[["AWS", 12.5], ["Azure", 3]],
        money_columns=frozenset({1}),
    )
    card = reply_card(Reply(text="By provider: $15.50", table=two))
    assert_valid_card(card)
    (facts,) = elements(card, "FactSet")
    assert facts["facts"] == [
        {"title": "AWS", "value": "$12.50"},
        {"title": "Azure", "value": "$3.00"},
    ]
    rows = [[f"team-{i}", float(i), f"{i}%", float(i), "+1.0%"] for i in range(MAX_ROWS + 15)]
    columns = ["Team", "Amount", "Share", "Previous", "Change"]
    wide = Table(columns=columns, rows=rows, money_columns=frozenset({1, 3}))
    trend = Reply(text="By day: $1", table=wide, data={"group_by": ["day"]})
    card = reply_card(trend, chart=chart_for(trend, "By day"))
    assert_valid_card(card)
    (table,) = elements(card, "Table")
    assert len(table["rows"]) == 1 + MAX_ROWS
    assert card["body"][-1]["text"] == "… and 15 more row(s) not shown."
    # A full table and a chart would pass Teams' message limit: the chart gives way.
    assert chart_image(chart_for(trend, "By day"), "By day") is not None
    assert elements(card, "Image") == []


def test_a_pending_action_gets_approve_and_deny_submits(engine: Engine) -> None:
    settings = Settings(database_url=str(engine.url), now=NOW)
    guarded = Assistant(settings, engine, make_registry(FakeCloud()))
    reply = guarded.ask("stop i-1", "teams:alice").reply
    card = reply_card(reply)
    assert_valid_card(card)
    with engine.connect() as connection:
        action_id = connection.execute(text("SELECT max(id) FROM actions")).scalar_one()
    assert [(a["type"], a["title"], a["data"]) for a in card["actions"]] == [
        ("Action.Submit", "Approve", {"verb": "approve", "action_id": action_id}),
        ("Action.Submit", "Deny", {"verb": "deny", "action_id": action_id}),
    ]
    assert "actions" not in reply_card(reply, buttons=False)


def test_text_from_data_cannot_link_outside_the_allowed_domains() -> None:
    reply = Reply(
        text="Total: $1\nSee https://evil.example.com/x and [docs](https://docs.corp.dev/a)",
        table=Table(columns=["Account", "Note", "Amount"], rows=[["a", "http://phish.io", 1.0]]),
    )
    card = json.dumps(reply_card(reply, domains=("corp.dev",)))
    assert "https://evil" not in card and "http://phish.io" not in card
    assert "hxxps://evil[.]example[.]com/x" in card and "https://docs.corp.dev/a" in card


def test_a_chart_too_big_for_a_message_is_left_out() -> None:
    noise = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert chart_image(buffer.getvalue(), "noise") is None
    card = reply_card(Reply(text="Total: $1"), chart=buffer.getvalue())
    assert_valid_card(card)
    assert elements(card, "Image") == []
    small = Image.new("RGB", (800, 400), "white")
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    image = chart_image(buffer.getvalue(), "blank")
    assert image is not None and len(image["url"]) <= CHART_BUDGET + len("data:image/png;base64,")


@pytest.mark.parametrize(
    ("status", "buttons"),
    [("open", ["Expected", "Planned", "Not an issue", "Snooze 7 days"]), ("muted", [])],
)
def test_only_an_open_anomaly_alert_gets_feedback_submits(status: str, buttons: list) -> None:
    reply = Reply(
        text="Cost anomaly: gpt-4o spend tripled",
        data={"anomaly_alert": {"id": 7, "status": status}},
    )
    card = reply_card(reply)
    assert_valid_card(card)
    actions = card.get("actions", [])
    assert [action["title"] for action in actions] == buttons
    assert all(
        action["data"] == {"verb": "alert_feedback", "feedback": feedback, "alert_id": 7}
        for action, feedback in zip(
            actions, ["expected", "planned", "not_an_issue", "snooze"], strict=False
        )
    )
    assert reply_card(reply, buttons=False).get("actions") is None
