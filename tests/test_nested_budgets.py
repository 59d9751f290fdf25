"""Nested budgets and overrun fixes: tree, roll-up against plain SQL, warnings, anomaly fixes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.pipeline import Assistant
from skills.budget_fixes import (
    FIX_FINDERS,
    Fix,
    FixContext,
    anomaly_fixes,
    find_fixes,
    idle_gpu_fixes,
)
from skills.budgeting import budget_status
from storage import budget_links, gpu_telemetry
from storage import budgets as store
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

DEMO = generate_demo_focus(date(2026, 11, 28), days=120)
NOW = datetime(2026, 11, 29, 12)
# Actual spend is to yesterday: 2026-11-01 up to (not including) 2026-11-29.
IN_NOVEMBER = "li.charge_period_start >= '2026-11-01' AND li.charge_period_start < '2026-11-29'"
TREE_CSV = (
    "scope,value,period,amount,parent\n"
    "*,,monthly,300000,\n"
    "owner,search,monthly,150000,*\n"
    "owner,research,monthly,200000,*\n"
    "tag:project,answer-engine,monthly,40000,owner=search\n"
    "sku,gpt-4o,monthly,30000,owner=search\n"
)


def sql_total(engine: Engine, where: str, join_tag: str | None = None) -> float:
    """EffectiveCost in November to date by plain SQL, optionally joined to one tag key."""
    join = (
        f"JOIN cost_tags t ON t.line_item_id = li.id AND t.key = '{join_tag}'" if join_tag else ""
    )
    statement = (
        f"SELECT coalesce(sum(li.effective_cost), 0) FROM cost_line_items li {join} "
        f"WHERE {IN_NOVEMBER} AND ({where})"
    )
    with engine.connect() as connection:
        return float(connection.execute(text(statement)).scalar())


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('nested') / 'nested.db'}"
    engine = open_database(url)
    ingest_frame(engine, DEMO, "demo")
    yield url, engine
    engine.dispose()


@pytest.fixture
def engine(store_url: tuple[str, Engine]) -> Engine:
    engine = store_url[1]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM budget_links"))
        connection.execute(text("DELETE FROM budgets"))
        connection.execute(text("DELETE FROM gpu_samples"))
    return engine


def import_csv(url: str, tmp_path: Path, monkeypatch, body: str):
    path = tmp_path / "budgets.csv"
    path.write_text(body)
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", url)
    monkeypatch.setenv("SPENDBOT_NOW", NOW.isoformat())
    from bot.cli import app

    return CliRunner().invoke(app, ["budgets", "import", str(path)])


def budget(engine: Engine, scope: str, value: str) -> store.Budget:
    with engine.connect() as connection:
        found = store.find(connection, scope, value, "monthly")
    assert found is not None
    return found


def test_tree_roll_up_and_warning(
    engine: Engine, store_url: tuple[str, Engine], tmp_path: Path, monkeypatch
) -> None:
    result = import_csv(store_url[0], tmp_path, monkeypatch, TREE_CSV)
    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        links = connection.execute(
            text(
                "SELECT c.scope_value, p.scope FROM budget_links l "
                "JOIN budgets c ON c.id = l.child_budget_id "
                "JOIN budgets p ON p.id = l.parent_budget_id"
            )
        ).all()
    assert sorted(links) == [
        ("answer-engine", "owner"),
        ("gpt-4o", "owner"),
        ("research", "*"),
        ("search", "*"),
    ]
    # Each budget's actual is its own scope by plain SQL, the parent's included.
    everything = budget_status(engine, budget(engine, "*", ""), NOW, with_drivers=False)
    assert everything.actual == pytest.approx(sql_total(engine, "1 = 1"))
    search = budget_status(engine, budget(engine, "owner", "search"), NOW, with_drivers=False)
    assert search.actual == pytest.approx(sql_total(engine, "t.value = 'search'", "team"))
    project = budget_status(
        engine, budget(engine, "tag:project", "answer-engine"), NOW, with_drivers=False
    )
    model = budget_status(engine, budget(engine, "sku", "gpt-4o"), NOW, with_drivers=False)
    assert project.actual == pytest.approx(
        sql_total(engine, "t.value = 'answer-engine'", "project")
    )
    assert model.actual == pytest.approx(sql_total(engine, "li.sku_id = 'gpt-4o'"))
    # The two children overlap (answer-engine runs on gpt-4o): their sum double counts, which
    # is why a parent is never measured as the sum of its children.
    union = sql_total(engine, "t.value = 'answer-engine' OR li.sku_id = 'gpt-4o'", "project")
    union += sql_total(
        engine,
        "li.sku_id = 'gpt-4o' AND li.id NOT IN "
        "(SELECT line_item_id FROM cost_tags WHERE key = 'project')",
    )
    assert project.actual + model.actual > union + 1.0

    reply = make_assistant(engine, NOW).ask("budget status", "x").reply
    tree = reply.text[reply.text.index("Budget tree") :].splitlines()
    assert tree[1].startswith("• all spend: ")
    assert [line.split(":")[0] for line in tree[1:6]] == [
        "• all spend",
        "    ◦ owner research",
        "    ◦ owner search",
        "        ◦ tag project answer-engine",
        "        ◦ sku gpt-4o",
    ]
    assert reply.data["warnings"] == [
        "Warning: the budgets under all spend add up to $350,000.00, above its own $300,000.00."
    ]
    assert tree[-1] == reply.data["warnings"][0]


def test_links_refuse_loops_mixed_periods_and_missing_parents(
    engine: Engine, store_url: tuple[str, Engine], tmp_path: Path, monkeypatch
) -> None:
    assert import_csv(store_url[0], tmp_path, monkeypatch, TREE_CSV).exit_code == 0
    with engine.begin() as connection, pytest.raises(ValueError, match="loop"):
        budget_links.link(
            connection, budget(engine, "*", ""), budget(engine, "tag:project", "answer-engine")
        )
    quarterly = TREE_CSV + "owner,data,quarterly,9000,*\n"
    result = import_csv(store_url[0], tmp_path, monkeypatch, quarterly)
    assert result.exit_code == 2 and "no quarterly budget for *" in result.output
    # The failed import changed nothing: the data budget is not there.
    with engine.connect() as connection:
        assert store.find(connection, "owner", "data", "quarterly") is None
        assert connection.execute(text("SELECT count(*) FROM budget_links")).scalar() == 4
    result = import_csv(store_url[0], tmp_path, monkeypatch, TREE_CSV + "owner,data,monthly,9,x\n")
    assert result.exit_code == 2 and "line 7: parent 'x' is not scope=value" in result.output


def test_overrun_lists_anomalies_in_scope_as_fixes(engine: Engine) -> None:
    search_spend = sql_total(engine, "t.value = 'search'", "team")
    with engine.begin() as connection:
        for value, amount in (("search", search_spend / 2), ("data", 10**7)):
            store.upsert(
                connection,
                scope="owner",
                scope_value=value,
                period="monthly",
                amount=amount,
                currency="USD",
                by="t",
                at=NOW,
            )
    assistant: Assistant = make_assistant(engine, NOW)
    reply = assistant.ask("which teams will overrun this month?", "x").reply
    (search,) = reply.data["budgets"]
    assert search["budget"]["scope_value"] == "search"
    # The anomaly skill's own answer for the team over the same days, spikes only.
    anomalies = assistant.ask("anomalies for team search since 2026-11-01", "x").reply.data
    expected = sorted(
        (a["impact"] for a in anomalies["alerts"] if a["impact"] > 0 and a["owner"] == "search"),
        reverse=True,
    )
    assert expected, "the demo data has search anomalies in November"
    assert [fix["amount"] for fix in search["fixes"]] == pytest.approx(expected, abs=0.01)
    assert all(fix["kind"] == "anomaly" for fix in search["fixes"])
    assert "◦ Fix: " in reply.text
    # An on-track budget runs no finder at all.
    data = budget_status(engine, budget(engine, "owner", "data"), NOW, with_drivers=False)
    assert find_fixes(FixContext(assistant.context("x")), data, (lambda *_: pytest.fail(),)) == []


def test_another_finder_plugs_in(engine: Engine) -> None:
    with engine.begin() as connection:
        research, _ = store.upsert(
            connection,
            scope="owner",
            scope_value="research",
            period="monthly",
            amount=1000,
            currency="USD",
            by="t",
            at=NOW,
        )
    status = budget_status(engine, research, NOW, with_drivers=False)
    idle = Fix("idle_gpu", "stop i-0idle (0% GPU for 3 days)", 10**6)
    shared = FixContext(make_assistant(engine, NOW).context("x"))
    fixes = find_fixes(shared, status, (*FIX_FINDERS, lambda *_: [idle]))
    assert fixes[0] == idle
    assert fixes[1:] == anomaly_fixes(shared, status)


def _samples(host: str, utilization: float) -> list[dict]:
    """An agent's samples every 5 minutes for the two hours before now."""
    return [
        {
            "host": host,
            "gpu_index": 0,
            "sampled_at": NOW - timedelta(minutes=minutes),
            "utilization_pct": utilization,
            "process_count": 0 if utilization == 0 else 1,
            "source": "nvml",
        }
        for minutes in range(0, 125, 5)
    ]


def test_idle_gpus_in_scope_are_fixes(engine: Engine) -> None:
    with engine.begin() as connection:
        gpu_telemetry.insert_samples(
            connection, _samples("gpu-box-idle", 0.0) + _samples("gpu-box-busy", 80.0)
        )
        for scope, value in (("*", ""), ("provider", "AWS")):
            store.upsert(
                connection,
                scope=scope,
                scope_value=value,
                period="monthly",
                amount=1000,
                currency="USD",
                by="t",
                at=NOW,
            )
    context = FixContext(make_assistant(engine, NOW).context("x"))
    everything = budget_status(engine, budget(engine, "*", ""), NOW, with_drivers=False)
    aws = budget_status(engine, budget(engine, "provider", "AWS"), NOW, with_drivers=False)
    idle = idle_gpu_fixes(context, everything)
    assert [fix.kind for fix in idle] == ["idle_gpu"]
    assert "gpu-box-idle" in idle[0].text and "hourly cost unknown" in idle[0].text
    # An on-premises host is not AWS spend: not a fix for the AWS budget.
    assert idle_gpu_fixes(context, aws) == []
    assert any(fix.kind == "idle_gpu" for fix in find_fixes(context, everything))
