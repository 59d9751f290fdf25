"""Budgets per SKU (model), and ``spendbot budgets check`` saying what the scheduled alerts say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from skills.budgeting import budget_status
from storage import budgets as store
from storage.database import open_database
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.guarded_fakes import grant
from tests.test_budget_alerts import add_idle_gpu
from tests.test_budgets import DEMO, FINOPS, NOW

IDLE_HOST = "gpu-box-idle"


@pytest.mark.parametrize("word", ["sku", "model"])
def test_a_budget_for_a_model_covers_that_sku(sqlite_engine: Engine, word: str) -> None:
    ingest_frame(sqlite_engine, DEMO, "demo")
    grant(sqlite_engine, FINOPS, "finops")
    assistant = make_assistant(sqlite_engine, NOW)
    answer = assistant.ask(f"set a $5k monthly budget for {word} gpt-4o", FINOPS)
    assert not answer.reply.is_error, answer.reply.text
    with sqlite_engine.connect() as connection:
        [budget] = store.list_budgets(connection)
    assert (budget.scope, budget.scope_value, budget.amount) == ("sku", "gpt-4o", 5000.0)
    # Spend so far this period is November up to yesterday, for that SKU alone.
    day = DEMO.ChargePeriodStart.str[:10]
    in_november = (day >= "2026-11-01") & (day <= "2026-11-28")
    expected = float(DEMO[in_november & DEMO.SkuId.eq("gpt-4o")].EffectiveCost.sum())
    assert expected > 0
    status = budget_status(sqlite_engine, budget, NOW, with_drivers=False)
    assert status.actual == pytest.approx(expected, abs=1e-6)


def test_budgets_check_prints_drivers_and_fixes(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = open_database(url)
    ingest_frame(engine, DEMO, "demo")
    with engine.begin() as connection:
        add_idle_gpu(connection, IDLE_HOST)
        # Half of November's spend to date: both the actual and the forecast thresholds fire.
        day = DEMO.ChargePeriodStart.str[:10]
        spent = float(DEMO[(day >= "2026-11-01") & (day <= "2026-11-28")].EffectiveCost.sum())
        store.upsert(
            connection, scope="*", scope_value="", period="monthly", amount=spent / 2,
            currency="USD", by="t", at=NOW, notify="slack:#budgets",
        )  # fmt: skip
    engine.dispose()
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", url)
    monkeypatch.setenv("SPENDBOT_NOW", NOW.isoformat())

    result = CliRunner().invoke(app, ["budgets", "check"])
    assert result.exit_code == 0, result.output
    alerts = result.output.split("[slack:#budgets] ")[1:]
    assert len(alerts) == 2, result.output
    for text in alerts:
        assert "Drivers vs the same days last period:" in text
        assert f"• Fix: stop idle GPU machine {IDLE_HOST}" in text

    # Fired once per threshold: a second check prints nothing new.
    again = CliRunner().invoke(app, ["budgets", "check", "--json"])
    assert again.exit_code == 0 and json.loads(again.output) == []
