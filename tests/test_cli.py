"""The spendbot command as users run it: ingest, ask --json, piped chat, demo data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SAMPLE_CSV

SAMPLE = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)


def spendbot(
    tmp_path: Path, *args: str, stdin: str = "", now: str = "2024-10-15T12:00:00"
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SPENDBOT_NOW": now,
        "COLUMNS": "200",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_ingest_prints_rows_providers_periods_and_totals(tmp_path: Path) -> None:
    result = spendbot(tmp_path, "ingest", str(SAMPLE_CSV))
    assert result.returncode == 0, result.stderr
    assert "Loaded 1,000 rows from 1 file(s)." in result.stdout
    assert "Providers: AWS, Microsoft, Oracle" in result.stdout
    assert "Billing periods: 2024-09, 2024-10" in result.stdout
    effective = pd.to_numeric(SAMPLE["EffectiveCost"]).sum()
    billed = pd.to_numeric(SAMPLE["BilledCost"]).sum()
    assert f"EffectiveCost ${effective:,.2f} / BilledCost ${billed:,.2f}" in result.stdout


def test_bad_file_exits_non_zero_and_keeps_the_store(tmp_path: Path) -> None:
    assert spendbot(tmp_path, "ingest", str(SAMPLE_CSV)).returncode == 0
    bad = SAMPLE.copy()
    bad.loc[41, "BilledCost"] = "twelve"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = spendbot(tmp_path, "ingest", str(path))
    assert result.returncode == 1
    assert "bad.csv: row 42, line 43, column BilledCost: not a number ('twelve')" in result.stderr
    assert "the store is unchanged" in result.stderr
    answer = json.loads(
        spendbot(tmp_path, "ask", "--json", "billed spend in september 2024").stdout
    )
    assert answer["data"]["total"] == pytest.approx(
        pd.to_numeric(SAMPLE["BilledCost"]).sum() - _october_billed(), abs=1e-6
    )


def _october_billed() -> float:
    october = SAMPLE[SAMPLE["ChargePeriodStart"] >= "2024-10-01"]
    return pd.to_numeric(october["BilledCost"]).sum()


def test_ask_json_has_text_tool_calls_and_data(tmp_path: Path) -> None:
    spendbot(tmp_path, "ingest", str(SAMPLE_CSV))
    result = spendbot(tmp_path, "ask", "--json", "spend by provider in September 2024")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"text", "tool_calls", "data"}
    assert answer["tool_calls"][0]["name"] == "spend_query"
    assert answer["tool_calls"][0]["input"]["group_by"] == ["provider"]
    september = SAMPLE[SAMPLE["ChargePeriodStart"] < "2024-10-01"]
    expected = (
        september.assign(cost=pd.to_numeric(september["EffectiveCost"]))
        .groupby("ProviderName")["cost"]
        .sum()
    )
    amounts = {row["key"]["provider"]: row["amount"] for row in answer["data"]["rows"]}
    assert amounts == pytest.approx(expected.to_dict(), abs=1e-6)
    assert isinstance(answer["data"]["total"], float)
    assert "EffectiveCost (amortized)" in answer["text"]


def test_ask_unknown_question_exits_non_zero_with_examples(tmp_path: Path) -> None:
    result = spendbot(tmp_path, "ask", "make me a sandwich")
    assert result.returncode == 1
    assert "what did we spend last month?" in result.stdout


def test_piped_chat_answers_each_line_and_exits(tmp_path: Path) -> None:
    spendbot(tmp_path, "ingest", str(SAMPLE_CSV))
    result = spendbot(tmp_path, "chat", stdin="spend in september 2024\nwhat data do you have?\n")
    assert result.returncode == 0, result.stderr
    effective = pd.to_numeric(
        SAMPLE[SAMPLE["ChargePeriodStart"] < "2024-10-01"]["EffectiveCost"]
    ).sum()
    assert f"Spend for September 2024: ${effective:,.2f}." in result.stdout
    assert "1,000 line items from 2024-09-01 to 2024-09-30" in result.stdout


def test_demo_data_loads_and_answers(tmp_path: Path) -> None:
    csv = tmp_path / "demo.csv"
    result = spendbot(
        tmp_path, "demo-data", "--days", "60", "--csv", str(csv), now="2026-11-29T12:00:00"
    )
    assert result.returncode == 0, result.stderr
    demo = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert f"Loaded {len(demo):,} rows" in result.stdout
    last_week = demo[
        (demo["ChargePeriodStart"] >= "2026-11-16") & (demo["ChargePeriodStart"] < "2026-11-23")
    ]
    answer = json.loads(
        spendbot(tmp_path, "ask", "--json", "spend last week", now="2026-11-29T12:00:00").stdout
    )
    assert answer["data"]["total"] == pytest.approx(
        pd.to_numeric(last_week["EffectiveCost"]).sum(), abs=0.01
    )


def test_ask_as_takes_full_identities_and_refuses_bad_ones(tmp_path: Path) -> None:
    assert spendbot(tmp_path, "roles", "grant", "slack:U1", "admin").returncode == 0
    result = spendbot(tmp_path, "ask", "--json", "--as", "slack:u1", "grant finops to terminal:bob")
    answer = json.loads(result.stdout)
    assert answer["data"]["action"]["requested_by"] == "slack:U1"
    bad = spendbot(tmp_path, "ask", "--as", "bad id!", "help")
    assert bad.returncode == 2
    assert "is not an identity I know" in bad.stderr
