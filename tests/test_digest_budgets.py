"""The digest's budget line and spendbot's own LLM cost, checked against pandas and the turns stored."""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine

from skills.catalog import load_skills
from storage import budgets as budget_store
from storage.conversations import TokenUsage, Turn, record_turn
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

NOW = datetime(2026, 11, 29, 12)
FRAME = generate_demo_focus(date(2026, 11, 28), days=90)
DIGEST = load_skills().get("digest_show")


def november(team: str | None = None) -> float:
    """Effective cost from 1 to 28 November (complete days), for one team tag or everything."""
    days = pd.to_datetime(FRAME["ChargePeriodStart"]).dt.date
    rows = FRAME[(days >= date(2026, 11, 1)) & (days <= date(2026, 11, 28))]
    if team is not None:
        tags = rows["Tags"].map(lambda t: json.loads(t).get("team") if isinstance(t, str) else None)
        rows = rows[tags == team]
    return float(rows["EffectiveCost"].sum())


def set_budget(engine: Engine, scope: str, value: str, amount: float) -> None:
    with engine.begin() as connection:
        budget_store.upsert(
            connection, scope=scope, scope_value=value, period="monthly", amount=amount,
            currency="USD", by="test", at=NOW,
        )  # fmt: skip


def ask_llm(engine: Engine, cost: float, at: datetime) -> None:
    usage = TokenUsage(requests=1, input_tokens=1000, output_tokens=200)
    turn = Turn("spend last week?", "…", "answered", None, "claude-sonnet-5-5", usage, cost)
    record_turn(engine, "slack:C1:1", "slack:U1", at, turn, keep_history=5)


@pytest.fixture
def store(sqlite_engine: Engine) -> Engine:
    ingest_frame(sqlite_engine, FRAME, "demo")
    return sqlite_engine


def test_the_digest_names_the_worst_budget_and_the_bots_own_cost(store: Engine) -> None:
    research = november("research")
    set_budget(store, "owner", "research", research * 0.9)  # already over
    set_budget(store, "*", "", november() * 10)  # far from its limit
    ask_llm(store, 0.0123, datetime(2026, 11, 18, 9))  # in last week (16–22 November)
    ask_llm(store, 0.5, datetime(2026, 11, 25, 9))  # this week: not in the digest's week
    reply = make_assistant(store, NOW).execute(DIGEST, {}, "test:user")
    assert not reply.is_error, reply.text
    budgets = reply.data["budgets"]
    assert [b["budget"]["label"] for b in budgets] == ["owner research", "all spend"]
    assert budgets[0]["state"] == "over" and budgets[1]["state"] == "on track"
    assert budgets[0]["actual"] == pytest.approx(research, rel=1e-9)
    line = next(text for text in reply.text.splitlines() if text.startswith("Budgets:"))
    assert line.startswith("Budgets: 1 over, 1 on track; worst: owner research (monthly)")
    assert f"${research:,.2f} of ${research * 0.9:,.2f} so far" in line
    assert reply.data["bot_cost"] == {"questions": 1, "cost_usd": 0.0123}
    assert "spendbot's own LLM use: $0.0123 for 1 question(s)." in reply.text


def test_a_team_digest_shows_only_that_teams_budget_and_no_bot_cost(store: Engine) -> None:
    set_budget(store, "owner", "research", 1_000_000.0)
    set_budget(store, "owner", "search", 1.0)
    ask_llm(store, 0.02, datetime(2026, 11, 18, 9))
    reply = make_assistant(store, NOW).execute(DIGEST, {"scope": {"team": "research"}}, "test:user")
    assert [b["budget"]["label"] for b in reply.data["budgets"]] == ["owner research"]
    assert "Budgets: 1 on track; closest: owner research" in reply.text
    assert "bot_cost" not in reply.data and "LLM use" not in reply.text
