"""Anomaly detection over the demo store, checked against pandas on the generated FOCUS frame."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bench.anomalies import run as run_benchmark
from bot.cli import app
from bot.pipeline import Assistant
from skills.catalog import load_skills
from skills.detection import DetectorParams, detect_frame
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

END = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 12)
SPIKE_DAY = END - timedelta(days=9)
SHIFT_DAY = END - timedelta(days=17)
FRAME = generate_demo_focus(END, days=120)
FRAME["day"] = pd.to_datetime(FRAME["ChargePeriodStart"]).dt.date
USAGE = FRAME[FRAME["ChargeCategory"].isin(["Usage", "Purchase"])]
P5 = FRAME[FRAME["ChargeDescription"].fillna("").str.contains("p5.48xlarge", regex=False)]
P5_RESOURCE = P5["ResourceId"].iloc[0]
ANOMALIES = load_skills().get("anomaly_list")


def daily(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("day")["EffectiveCost"].sum()


def alerts(assistant: Assistant, **args: object) -> list[dict]:
    reply = assistant.execute(ANOMALIES, {"period": "since 2026-10-30", **args}, "test:user")
    assert not reply.is_error, reply.text
    return reply.data["alerts"]


def store(directory: Path, frame: pd.DataFrame) -> Assistant:
    engine = open_database(f"sqlite:///{directory / 'spendbot.db'}")
    ingest_frame(engine, frame.drop(columns=["day"]), "test")
    return make_assistant(engine, NOW)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return store(tmp_path_factory.mktemp("demo"), FRAME)


@pytest.fixture(scope="module")
def found(demo: Assistant) -> list[dict]:
    return alerts(demo)


def test_planted_anomalies_are_one_alert_each_on_both_backends(engine: Engine) -> None:
    ingest_frame(engine, FRAME.drop(columns=["day"]), "demo")
    found = alerts(make_assistant(engine, NOW))
    assert len(found) == 2, found
    shift, spike = found  # worst first
    assert (shift["dimension"], shift["key"]) == ("resource", P5_RESOURCE)
    assert shift["date"] == SHIFT_DAY.isoformat()
    assert (shift["provider"], shift["service"], shift["owner"]) == (
        "AWS",
        "Amazon Elastic Compute Cloud",
        "search",
    )
    assert (spike["dimension"], spike["key"], spike["owner"]) == ("sku", "gpt-4o", "search")
    assert (spike["date"], spike["end_date"]) == (SPIKE_DAY.isoformat(),) * 2
    assert (spike["provider"], spike["service"]) == ("OpenAI", "OpenAI API")
    # The other levels that moved are folded into these two, not alerts of their own.
    assert {"team", "service", "provider"} <= {
        level["dimension"] for level in shift["also_seen_at"]
    }
    assert {"service", "provider"} <= {level["dimension"] for level in spike["also_seen_at"]}


def test_spike_figures_match_pandas(found: list[dict]) -> None:
    spike = next(alert for alert in found if alert["key"] == "gpt-4o")
    gpt4o = daily(USAGE[USAGE["SkuId"] == "gpt-4o"])
    assert spike["actual"] == pytest.approx(gpt4o[SPIKE_DAY], abs=0.01)
    # Expected: what this weekday usually costs, e.g. the median of the 4 weeks before.
    same_weekday = [gpt4o[SPIKE_DAY - timedelta(weeks=k)] for k in range(1, 5)]
    assert spike["expected"] == pytest.approx(np.median(same_weekday), rel=0.15)
    assert spike["impact"] == pytest.approx(spike["actual"] - spike["expected"], abs=0.02)
    assert spike["actual"] > 4 * spike["expected"]


def test_level_shift_figures_match_pandas(found: list[dict]) -> None:
    shift = next(alert for alert in found if alert["dimension"] == "resource")
    p5 = daily(P5)
    before = p5[(p5.index >= SHIFT_DAY - timedelta(weeks=4)) & (p5.index < SHIFT_DAY)]
    after = p5[p5.index >= SHIFT_DAY]
    assert after.min() > before.max()  # the planted shift, seen independently
    assert shift["actual"] <= after.sum() + 0.01
    assert shift["actual"] >= after.iloc[0]
    assert shift["actual"] > 3 * shift["expected"]
    assert shift["impact"] == pytest.approx(shift["actual"] - shift["expected"], abs=0.02)


def test_tax_and_credits_never_alert(tmp_path: Path) -> None:
    odd = FRAME[FRAME["ChargeCategory"] == "Tax"].head(2).copy()
    odd["ChargeCategory"] = ["Tax", "Credit"]
    odd["EffectiveCost"] = odd["BilledCost"] = [25_000.0, -25_000.0]
    for row, day in zip(odd.index, (date(2026, 11, 5), date(2026, 11, 6)), strict=True):
        odd.loc[row, "ChargePeriodStart"] = f"{day} 00:00:00"
        odd.loc[row, "ChargePeriodEnd"] = f"{day + timedelta(days=1)} 00:00:00"
    assistant = store(tmp_path, pd.concat([FRAME, odd], ignore_index=True))
    found = alerts(assistant)
    assert [alert["key"] for alert in found] == [P5_RESOURCE, "gpt-4o"]
    assert not {"2026-11-05", "2026-11-06"} & {alert["date"] for alert in found}


def test_a_drop_is_detected(tmp_path: Path) -> None:
    broken = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    gone = (FRAME["SkuId"] == "claude-sonnet-4-5") & FRAME["day"].isin(broken)
    found = alerts(store(tmp_path, FRAME[~gone]))
    drop = next(alert for alert in found if alert["key"] == "claude-sonnet-4-5")
    assert (drop["kind"], drop["dimension"], drop["owner"]) == ("drop", "sku", "ml-platform")
    assert (drop["date"], drop["end_date"]) == ("2026-11-24", "2026-11-26")
    assert drop["actual"] == 0
    assert drop["impact"] == pytest.approx(-FRAME[gone]["EffectiveCost"].sum(), rel=0.2)
    assert drop["impact"] < 0


def test_new_spend_is_detected(tmp_path: Path) -> None:
    new = FRAME[(FRAME["SkuId"] == "gpt-4o") & (FRAME["day"] > date(2026, 11, 20))].copy()
    new["SkuId"] = new["SkuPriceId"] = "o3-pro"
    new["Id"] = [f"new-{index}" for index in range(len(new))]
    found = alerts(store(tmp_path, pd.concat([FRAME, new], ignore_index=True)))
    alert = next(alert for alert in found if alert["key"] == "o3-pro")
    assert (alert["kind"], alert["dimension"], alert["date"]) == ("new", "sku", "2026-11-21")
    assert alert["expected"] == 0
    assert alert["actual"] == pytest.approx(new["EffectiveCost"].sum(), abs=0.01)
    assert alert["owner"] == "search"


def test_minimum_impact_suppresses_small_ones(demo: Assistant, found: list[dict]) -> None:
    spike_impact = next(a["impact"] for a in found if a["key"] == "gpt-4o")
    assert 1_000 < spike_impact < 1_200
    keys = [alert["key"] for alert in alerts(demo, min_impact=1_200)]
    assert keys == [P5_RESOURCE]


def test_team_filter_and_routed_questions(demo: Assistant) -> None:
    answer = demo.ask("any cost anomalies for team search since 2026-11-01?", "test:user")
    assert answer.tool_calls[0]["name"] == "anomaly_list"
    assert [alert["key"] for alert in answer.reply.data["alerts"]] == [P5_RESOURCE, "gpt-4o"]
    assert "EffectiveCost" in answer.reply.context
    assert "tax, credits and adjustments excluded" in answer.reply.context
    assert answer.reply.table is not None and len(answer.reply.table.rows) == 2
    quiet = demo.ask("unusual spend on 2026-11-05", "test:user").reply
    assert quiet.text.startswith("No cost anomalies from 2026-11-05 to 2026-11-05")


def test_detect_frame_flags_spikes_and_drops_not_weekends() -> None:
    days = pd.date_range("2026-01-05", periods=100, freq="D")
    rng = np.random.default_rng(3)
    values = np.where(days.day_of_week >= 5, 200.0, 1000.0) * np.exp(rng.normal(0, 0.05, 100))
    values[90] *= 3
    values[95] = 0
    frame = pd.DataFrame({("a",): values}, index=days)
    found = detect_frame(frame, date(2026, 3, 1), DetectorParams())
    assert [(e.start, e.kind) for e in found] == [
        (days[90].date(), "spike"),
        (days[95].date(), "drop"),
    ]


def test_detector_beats_the_z_score_baseline() -> None:
    results = run_benchmark(n_series=80, days=120, seed=20261129)
    detector, baseline = results["detector"], results["z-score 3σ"]
    assert detector["precision"] > baseline["precision"]
    assert detector["recall"] > baseline["recall"]


def test_cli_anomalies_json(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'cli.db'}")
    ingest_frame(engine, FRAME.drop(columns=["day"]), "demo")
    engine.dispose()
    env = {
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SPENDBOT_NOW": NOW.isoformat(),
        "ANTHROPIC_API_KEY": None,
    }
    runner = CliRunner()
    result = runner.invoke(app, ["anomalies", "--json", "--since", "2026-10-30"], env=env)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [alert["key"] for alert in found] == [P5_RESOURCE, "gpt-4o"]
    for alert in found:
        assert {"date", "provider", "service", "dimension", "key", "expected", "actual"} <= set(
            alert
        )
        assert {"impact", "owner"} <= set(alert)
    text = runner.invoke(app, ["anomalies", "--since", "2026-10-30", "--team", "search"], env=env)
    assert text.exit_code == 0 and "2 cost anomalies for team search" in text.stdout
    bad = runner.invoke(app, ["anomalies", "--since", "yesterdayish"], env=env)
    assert bad.exit_code == 1
