"""Budgets: figures against pandas, alerts that fire exactly once, forecasts against the run rate."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bot.pipeline import Assistant
from skills.budgeting import budget_status, evaluate_budgets
from skills.budgets import parse_budget_text
from storage import audit
from storage import budgets as store
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from storage.models import budget_alerts
from tests.conftest import make_assistant
from tests.guarded_fakes import grant

DEMO = generate_demo_focus(date(2026, 11, 28), days=120)
TEAM = DEMO.Tags.map(lambda tags: json.loads(tags).get("team") if isinstance(tags, str) else None)
NOW = datetime(2026, 11, 29, 12)
FINOPS = "terminal:fin"


def team_spend(team: str, first: str, last: str) -> float:
    """EffectiveCost of a team from `first` to `last` inclusive (days as YYYY-MM-DD)."""
    day = DEMO.ChargePeriodStart.str[:10]
    return float(DEMO[TEAM.eq(team) & (day >= first) & (day <= last)].EffectiveCost.sum())


def set_budget(engine: Engine, team: str, amount: float, period: str = "monthly", **extra):
    with engine.begin() as connection:
        budget, _ = store.upsert(
            connection,
            scope="owner",
            scope_value=team,
            period=period,
            amount=amount,
            currency="USD",
            by="t",
            at=NOW,
            **extra,
        )
    return budget


@pytest.fixture
def assistant(engine: Engine) -> Assistant:
    ingest_frame(engine, DEMO, "demo")
    grant(engine, FINOPS, "finops")
    return make_assistant(engine, NOW)


def test_setting_a_budget_needs_finops_for_that_team_and_is_audited(
    assistant: Assistant,
) -> None:
    refused = assistant.ask("set a $20k monthly budget for research", "terminal:bob")
    assert refused.reply.is_error and "finops" in refused.reply.text
    grant(assistant.engine, "terminal:lead", "finops", team="search")
    other_team = assistant.ask("set a $20k monthly budget for research", "terminal:lead")
    assert other_team.reply.is_error
    own_team = assistant.ask("set a $30k monthly budget for search", "terminal:lead")
    assert not own_team.reply.is_error, own_team.reply.text
    answer = assistant.ask("set a $20k monthly budget for research", FINOPS)
    assert not answer.reply.is_error, answer.reply.text
    assert answer.tool_calls[0]["input"] | {"notify": None} == {
        "amount": 20000.0,
        "period": "monthly",
        "scope": "owner",
        "value": "research",
        "currency": "USD",
        "notify": None,
    }
    assistant.ask("set a $25k monthly budget for research", FINOPS)
    with assistant.engine.connect() as connection:
        budgets = store.list_budgets(connection)
    assert [(b.scope_value, b.amount) for b in budgets] == [
        ("research", 25000.0),
        ("search", 30000.0),
    ]
    changes = [e for e in audit.query(assistant.engine) if e.event == "budget_set"]
    assert [(e.actor, e.detail["budget"]["amount"]) for e in changes] == [
        ("terminal:lead", 30000.0),
        (FINOPS, 20000.0),
        (FINOPS, 25000.0),
    ]
    assert changes[-1].detail["previous"]["amount"] == 20000.0


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "set a $20k monthly budget for research",
            {"amount": 20000.0, "period": "monthly", "scope": "owner", "value": "research"},
        ),
        (
            "set a quarterly budget of 150000 for aws",
            {"amount": 150000.0, "period": "quarterly", "scope": "provider", "value": "AWS"},
        ),
        (
            "budget $5,000 per month for service Amazon Bedrock notify slack:#finops",
            {"amount": 5000.0, "scope": "service", "value": "Amazon Bedrock"},
        ),
        (
            "set an annual budget of $1.5m for everything",
            {"amount": 1_500_000.0, "period": "annual", "scope": "*", "value": ""},
        ),
        (
            "set a 2,500 monthly budget for project=llm-pretrain",
            {"amount": 2500.0, "scope": "tag:project", "value": "llm-pretrain"},
        ),
    ],
)
def test_budget_phrases(sqlite_engine: Engine, message: str, expected: dict) -> None:
    ingest_frame(sqlite_engine, DEMO, "demo")
    args = parse_budget_text(message, make_assistant(sqlite_engine, NOW).context("x"))
    assert {key: getattr(args, key) for key in expected} == expected


def test_status_figures_match_pandas_and_the_forecast_skill(assistant: Assistant) -> None:
    engine = assistant.engine
    research = set_budget(engine, "research", 20_000)
    status = budget_status(engine, research, NOW)
    assert status.actual == pytest.approx(team_spend("research", "2026-11-01", "2026-11-28"))
    forecast = assistant.ask("what will the research team spend this month?", "x").reply.data
    assert status.forecast == pytest.approx(forecast["expected_total"], abs=1e-6)
    assert status.run_rate_forecast == pytest.approx(forecast["run_rate_total"], abs=1e-6)
    # Already over: the burn date is the day cumulative actual spend passed the budget.
    days = [f"2026-11-{day:02d}" for day in range(1, 29)]
    cumulative = np.cumsum([team_spend("research", day, day) for day in days])
    assert status.exhausted_on == date.fromisoformat(days[int(np.argmax(cumulative >= 20_000))])
    assert status.state == "over"
    # Drivers: the service up most against the same days of October, from pandas.
    search = budget_status(engine, set_budget(engine, "search", 10**6), NOW)
    day = DEMO.ChargePeriodStart.str[:10]
    frame = DEMO[TEAM == "search"]
    now = frame[day[TEAM == "search"].between("2026-11-01", "2026-11-28")]
    before = frame[day[TEAM == "search"].between("2026-10-01", "2026-10-28")]
    change = (
        now.groupby("ServiceName")
        .EffectiveCost.sum()
        .sub(before.groupby("ServiceName").EffectiveCost.sum(), fill_value=0)
    )
    top = change.sort_values(ascending=False)
    services = [d for d in search.drivers if d.dimension == "service"]
    assert services[0].name == top.index[0]
    assert services[0].change == pytest.approx(top.iloc[0])


def test_status_and_overrun_skills(assistant: Assistant) -> None:
    engine = assistant.engine
    assert "No budgets" in assistant.ask("how are we doing against budgets?", "x").reply.text
    set_budget(engine, "research", 20_000)  # spent more than that already
    set_budget(engine, "data", 10**7)  # cannot be reached
    reply = assistant.ask("how are we doing against budgets?", "x").reply
    assert {row["budget"]["scope_value"] for row in reply.data["budgets"]} == {"research", "data"}
    research = next(b for b in reply.data["budgets"] if b["budget"]["scope_value"] == "research")
    assert research["actual"] == pytest.approx(team_spend("research", "2026-11-01", "2026-11-28"))
    overrun = assistant.ask("which teams will overrun this month?", "x")
    assert overrun.tool_calls[0]["name"] == "budget_status"
    assert [b["budget"]["scope_value"] for b in overrun.reply.data["budgets"]] == ["research"]
    assert "research exhausted its budget on 2026-11-" in overrun.reply.text


def _fired(engine: Engine) -> list[tuple]:
    statement = select(budget_alerts.c.period_start, budget_alerts.c.kind, budget_alerts.c.percent)
    with engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(statement))


def test_alerts_fire_once_per_threshold_per_period(assistant: Assistant) -> None:
    engine = assistant.engine
    first_nine = team_spend("research", "2026-11-01", "2026-11-09")
    amount = first_nine / 0.6  # 60% used on the 10th
    budget = set_budget(engine, "research", amount, notify="slack:#research")
    on_10th = datetime(2026, 11, 10, 9)
    alerts = evaluate_budgets(engine, on_10th)
    status = budget_status(engine, budget, on_10th, with_drivers=False)
    expected = [("actual", 50)] + ([("forecast", 100)] if status.forecast >= amount else [])
    assert sorted((a.kind, a.percent) for a in alerts) == sorted(expected)
    assert all(alert.notify == "slack:#research" for alert in alerts)
    actual_alert = next(a for a in alerts if a.kind == "actual")
    assert "research" in actual_alert.message and "50%" in actual_alert.message
    assert evaluate_budgets(engine, on_10th) == []
    assert evaluate_budgets(engine, on_10th + timedelta(hours=5)) == []
    # Later in the month: only the thresholds newly crossed, by pandas' figures.
    later = datetime(2026, 11, 20, 9)
    spent = team_spend("research", "2026-11-01", "2026-11-19")
    new = [p for p in (80, 100) if spent >= amount * p / 100]
    assert new, "the fixture should cross another threshold"
    alerts = evaluate_budgets(engine, later)
    assert [(a.kind, a.percent, a.also) for a in alerts] == [("actual", new[-1], tuple(new[:-1]))]
    assert evaluate_budgets(engine, later) == []
    november = datetime(2026, 11, 1)
    assert _fired(engine) == sorted(
        [(november, kind, pct) for kind, pct in expected] + [(november, "actual", p) for p in new]
    )
    # A new period starts over: December's thresholds are its own.
    december = evaluate_budgets(engine, datetime(2026, 12, 2, 9))
    assert all(alert.period_start == date(2026, 12, 1) for alert in december)


def test_concurrent_evaluations_fire_each_threshold_once(assistant: Assistant) -> None:
    engine = assistant.engine
    set_budget(engine, "research", 1_000)  # every actual threshold crossed at once
    set_budget(engine, "search", 2_000)
    barrier = threading.Barrier(4)
    results: list[list] = [[] for _ in range(4)]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = evaluate_budgets(engine, NOW)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    fired = [
        (a.budget.scope_value, a.kind, p) for r in results for a in r for p in (*a.also, a.percent)
    ]
    assert len(fired) == len(set(fired))
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(budget_alerts)).scalar()
    assert rows == len(fired)
    assert {("research", "actual", 50), ("research", "actual", 100)} <= set(fired)


def test_budget_forecasts_beat_the_run_rate(sqlite_engine: Engine) -> None:
    """Month-end forecasts per team over two months of cut-offs: total error <= the run rate's."""
    ingest_frame(sqlite_engine, DEMO, "demo")
    ours = naive = 0.0
    for team in ("research", "search", "ml-platform", "data"):
        budget = set_budget(sqlite_engine, team, 10**9)
        for month, last in (("2026-09", 30), ("2026-10", 31)):
            actual = team_spend(team, f"{month}-01", f"{month}-{last}")
            for cut in (5, 10, 15, 20, 25):
                at = datetime.fromisoformat(f"{month}-{cut:02d}T12:00")
                status = budget_status(sqlite_engine, budget, at, with_drivers=False)
                ours += abs(status.forecast - actual)
                naive += abs(status.run_rate_forecast - actual)
    assert ours <= naive, (ours, naive)


def test_budgets_import_and_check_from_the_cli(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = open_database(url)
    ingest_frame(engine, DEMO, "demo")
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", url)
    monkeypatch.setenv("SPENDBOT_NOW", "2026-11-29T12:00:00")
    from bot.cli import app

    csv_file = tmp_path / "budgets.csv"
    csv_file.write_text(
        "scope,value,period,amount,currency,notify\n"
        'owner,research,monthly,"$20,000",USD,slack:#research\n'
        "provider,AWS,quarterly,500000,,\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["budgets", "import", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "Imported 2 budgets" in result.output
    first = runner.invoke(app, ["budgets", "check", "--json"])
    assert first.exit_code == 0, first.output
    alerts = json.loads(first.output)
    research = [a for a in alerts if a["budget"]["scope_value"] == "research"]
    assert {(a["kind"], a["percent"]) for a in research} >= {("actual", 100)}
    assert research[0]["notify"] == "slack:#research"
    second = runner.invoke(app, ["budgets", "check"])
    assert second.exit_code == 0 and "No new budget alerts." in second.output
    bad = tmp_path / "bad.csv"
    bad.write_text("scope,value,period,amount\nowner,research,weekly,10\n")
    result = runner.invoke(app, ["budgets", "import", str(bad)])
    assert result.exit_code == 2 and "line 2" in result.output


@given(
    amount=st.decimals(min_value="0.01", max_value="99999999", places=2),
    sign=st.sampled_from(["", "$"]),
    grouped=st.booleans(),
)
def test_csv_amounts_parse_with_signs_and_separators(amount, sign: str, grouped: bool) -> None:
    written = f"{amount:,}" if grouped else str(amount)
    rows = store.parse_csv(f'scope,value,period,amount\nowner,x,monthly,"{sign}{written}"\n')
    assert rows[0].amount == pytest.approx(float(amount))
