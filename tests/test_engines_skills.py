"""Read skills beyond spend on FOCUS Parquet queried in place by DuckDB: as the store answers.

The same rows are ingested into the store and written as Parquet; each bot database holds the
same allocation rule, shared-cost split, budgets, business metric and GPU stop. Every question is
asked of both and the figures compared; the store's answers are checked against plain SQL and
pandas in the skills' own tests, and a few DuckDB figures against pandas here.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from bot.pipeline import Assistant
from skills.anomaly_alerts import scan
from skills.budget_alerts import budget_notices
from skills.catalog import load_skills
from skills.owners import OwnerAssignArgs, plan_assign
from storage import budgets as budget_store
from storage import gpu_savings
from storage.allocation import Split, set_split
from storage.budgets import ALL
from storage.gpu_telemetry import insert_samples
from storage.unit_costs import MetricRow, replace_metrics
from tests.focus_engines import (
    NOW,
    engine_assistant,
    expected_frame,
    sql_amounts,
    store_assistant,
    write_focus_folder,
)

SKILLS = load_skills()
STOPPED = (
    "//compute.googleapis.com/projects/acme-ml-research/zones/us-central1-a/instances/a100-train-01"
)
"""A GPU machine of the demo rows: recorded as stopped during the digest's week, idle now."""


def _same_state(engine: Engine) -> None:
    """What a bot database holds besides the allocation rule: splits, budgets, a metric, a stop."""
    with engine.begin() as connection:
        set_split(connection, Split("data", "even", ("search", "research")), by="test", at=NOW)
        for scope, value, period, amount in (
            (ALL, "", "monthly", 150_000.0),
            ("owner", "platform", "monthly", 1_000.0),
            ("provider", "AWS", "quarterly", 60_000.0),
        ):
            budget_store.upsert(
                connection,
                scope=scope,
                scope_value=value,
                period=period,
                amount=amount,
                currency="USD",
                by="test",
                at=NOW,
            )
        gpu_savings.record(
            connection,
            gpu_savings.Stop(
                action_id=None,
                instance_id=STOPPED,
                provider="Google Cloud",
                instance_type="a2-highgpu-8g",
                region="us-central1",
                owner="research",
                stopped_at=datetime(2024, 10, 8, 9),
                hourly_cost=30.0,
                currency="USD",
                price_source="billing",
            ),
        )
        # An agent on the machine, idle for the last 90 minutes: billed price and owner from rows.
        insert_samples(
            connection,
            (
                {
                    "host": STOPPED,
                    "gpu_index": 0,
                    "sampled_at": NOW - timedelta(minutes=minutes),
                    "utilization_pct": 1.0,
                    "process_count": 0,
                    "source": "nvml",
                }
                for minutes in range(0, 90, 5)
            ),
        )
    days = [date(2024, 9, 1) + timedelta(days=i) for i in range(30)]
    rows = [MetricRow(day, "inferences", 1000.0 * (i + 1)) for i, day in enumerate(days)]
    replace_metrics(engine, rows, NOW)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, Assistant]:
    """(the store, DuckDB over the same rows as Parquet), their bot state alike."""
    folder = tmp_path_factory.mktemp("focus")
    write_focus_folder(folder)
    store = store_assistant(tmp_path_factory.mktemp("store") / "store.db")
    duckdb = engine_assistant(tmp_path_factory.mktemp("state") / "bot.db", "duckdb", folder)
    for assistant in (store, duckdb):
        _same_state(assistant.engine)
    return store, duckdb


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return expected_frame()


_ANSWERS: dict[tuple[int, str, str], dict] = {}


def answer(assistant: Assistant, skill: str, args: dict[str, Any]) -> dict:
    """A read skill's reply data (asked once per assistant and question: the data do not change)."""
    key = (id(assistant), skill, json.dumps(args, sort_keys=True))
    if key not in _ANSWERS:
        reply = assistant.execute(SKILLS.get(skill), args, "test:user")
        assert not reply.is_error, reply.text
        _ANSWERS[key] = reply.data
    return _ANSWERS[key]


def assert_same_figures(got: Any, expected: Any, path: str = "") -> None:
    """Equal structures, numbers to 1e-6; shown SQL left out (each engine has its own)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), path
        for key in expected:
            if key != "sql":
                assert_same_figures(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), path
        for index, (one, other) in enumerate(zip(got, expected, strict=True)):
            assert_same_figures(one, other, f"{path}[{index}]")
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert got == pytest.approx(expected, abs=1e-6), path
    else:
        assert got == expected, path


def amounts(data: Any) -> list[float]:
    """Every float in an answer: a test of nothing but zeros would prove little."""
    if isinstance(data, dict):
        return [x for key, value in data.items() if key != "sql" for x in amounts(value)]
    if isinstance(data, list | tuple):
        return [x for value in data for x in amounts(value)]
    return [data] if isinstance(data, float) else []


QUESTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "forecast": ("forecast_show", {}),
    "forecast_quarter_openai": (
        "forecast_show",
        {"period": "this quarter", "filters": {"provider": ["openai"]}},
    ),
    # Owners need the owner tag keys the Parquet holds and the rules the bot database holds.
    "forecast_owner": ("forecast_show", {"filters": {"owner": ["search"]}}),
    "showback": ("owner_showback", {"period": "September 2024"}),
    "unallocated": ("owner_unallocated", {"period": "September 2024"}),
    "coverage": ("owner_coverage", {"months": 3}),
    "unit_tokens": ("unit_cost", {"period": "September 2024"}),
    "unit_gpu_hours": ("unit_cost", {"period": "September 2024", "measure": "gpu_hours"}),
    "unit_metric": (
        "unit_cost",
        {"period": "September 2024", "measure": "metric", "metric_name": "inferences"},
    ),
    "anomalies": ("anomaly_list", {}),
    "digest": ("digest_show", {}),
    "digest_team": ("digest_show", {"scope": {"team": "search"}}),
    "budgets": ("budget_status", {}),
    "gpu_savings": ("gpu_savings", {"days": 30}),
    "gpu_efficiency": ("gpu_efficiency", {"days": 30}),
    "gpu_idle": ("gpu_idle_list", {}),
}


@pytest.mark.parametrize("name", QUESTIONS)
def test_duckdb_answers_like_the_store(name: str, pair: tuple[Assistant, Assistant]) -> None:
    skill, args = QUESTIONS[name]
    store, duckdb = pair
    expected = answer(store, skill, args)
    assert any(abs(amount) > 0.01 for amount in amounts(expected)), expected
    assert_same_figures(answer(duckdb, skill, args), expected)


def test_rules_splits_and_stops_come_from_the_bot_database(
    pair: tuple[Assistant, Assistant],
) -> None:
    """Rules and splits from the bot database; anomaly owners and GPU savings on DuckDB."""
    store, duckdb = pair
    rules = answer(duckdb, "owner_rules", {})
    assert rules == answer(store, "owner_rules", {})
    assert [rule["owner"] for rule in rules["rules"]] == ["platform"]
    assert rules["owner_tag_keys"] == ["team", "costcenter"]  # keys the Parquet holds
    showback = answer(duckdb, "owner_showback", {"period": "September 2024"})
    owners = showback["owners"]
    assert "platform" in owners  # the rule's owner (of zero-cost rows in this sample)
    assert owners["data"]["direct"] > 0
    assert owners["data"]["total"] == pytest.approx(0.0, abs=1e-6)
    assert owners["search"]["shared"] == pytest.approx(owners["data"]["direct"] / 2, abs=1e-6)
    digest = answer(duckdb, "digest_show", {})
    assert digest["idle_gpus"]["stopped"] == 1
    assert digest["idle_gpus"]["realized"] != 0
    alerts = answer(duckdb, "anomaly_list", {})["alerts"]
    assert any(alert["owner"] for alert in alerts)
    budgets = answer(duckdb, "budget_status", {})["budgets"]
    assert any(status["drivers"] for status in budgets)


def test_showback_is_pandas_over_the_parquet(
    pair: tuple[Assistant, Assistant], frame: pd.DataFrame
) -> None:
    september = frame[(frame["start"] >= "2024-09-01") & (frame["start"] < "2024-10-01")]
    expected = september.groupby("owner")["EffectiveCost"].sum().to_dict()
    data = answer(pair[1], "owner_showback", {"period": "September 2024"})
    direct = {owner: figures["direct"] for owner, figures in data["owners"].items()}
    assert direct == pytest.approx(expected, abs=1e-6)
    assert data["total"] == pytest.approx(september["EffectiveCost"].sum(), abs=1e-6)


def test_forecast_actual_is_pandas_over_the_parquet(
    pair: tuple[Assistant, Assistant], frame: pd.DataFrame
) -> None:
    """October's spend to yesterday, as the forecast adds it to what it expects."""
    october = frame[(frame["start"] >= "2024-10-01") & (frame["start"] < "2024-10-15")]
    data = answer(pair[1], "forecast_show", {})
    assert data["actual_to_date"] == pytest.approx(october["EffectiveCost"].sum(), abs=1e-6)


def test_shown_sql_runs_on_duckdb(pair: tuple[Assistant, Assistant]) -> None:
    """The SQL an answer shows is DuckDB's, over the views, with the store's rule inlined."""
    _, duckdb = pair
    data = answer(duckdb, "owner_unallocated", {"period": "September 2024"})
    found = sql_amounts(duckdb.cost_engine, data["sql"])
    assert found == pytest.approx(
        {"|".join(row["key"].values()): row["amount"] for row in data["rows"]}, abs=1e-6
    )
    showback = answer(duckdb, "owner_showback", {"period": "September 2024"})
    by_owner = sql_amounts(duckdb.cost_engine, showback["sql"])
    assert by_owner["platform"] == pytest.approx(showback["owners"]["platform"]["direct"], abs=1e-6)


def test_owner_of_a_resource_on_duckdb(
    pair: tuple[Assistant, Assistant], frame: pd.DataFrame
) -> None:
    """A resource the store's rule assigns, found among the Parquet rows."""
    resource = frame.loc[frame["owner"] == "platform", "ResourceId"].iloc[0]
    store, duckdb = pair
    expected = answer(store, "owner_show", {"resource": resource})
    assert expected["owner"] == "platform"
    assert_same_figures(answer(duckdb, "owner_show", {"resource": resource}), expected)


def test_scheduled_alerts_on_duckdb_like_the_store(pair: tuple[Assistant, Assistant]) -> None:
    """Anomaly scans (owners by spend) and budget thresholds, as the scheduler runs them."""
    store, duckdb = pair
    notices = {
        assistant: [notice.state.alert["alert"] for notice in scan(assistant.context("bot"))]
        for assistant in pair
    }
    assert notices[store]
    assert_same_figures(notices[duckdb], notices[store])
    budgets = {
        assistant: [notice.reply.data for notice in budget_notices(assistant.context("bot"))]
        for assistant in pair
    }
    assert budgets[store]
    assert_same_figures(budgets[duckdb], budgets[store])


def test_new_rule_preview_on_duckdb(pair: tuple[Assistant, Assistant]) -> None:
    """Assigning spend shows the last 30 days it matches, by current owner, from the files."""
    args = OwnerAssignArgs(owner="platform", provider="AWS")
    store, duckdb = pair
    expected = plan_assign(store.context("test:user"), args)
    assert expected.impact_amount and "search" in expected.impact
    got = plan_assign(duckdb.context("test:user"), args)
    assert (got.impact, got.impact_amount, got.targets) == (
        expected.impact,
        expected.impact_amount,
        expected.targets,
    )


@pytest.mark.parametrize(
    "text", ["set a $20k monthly budget for search", "set a $5000 monthly budget for 1234"]
)
def test_budget_owners_known_from_the_parquet(text: str, pair: tuple[Assistant, Assistant]) -> None:
    """Owners named by owner tags in the files are budget scopes, as in the store."""
    store, duckdb = pair
    parse = SKILLS.get("budget_set").parse_text
    expected = parse(text, store.context("test:user"))
    assert expected.scope == "owner"
    assert parse(text, duckdb.context("test:user")) == expected
