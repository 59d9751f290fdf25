"""`spendbot sync` end to end: settings from the environment, a fake OpenAI API, data_status."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fake_anthropic_admin import USAGE_PATH, FakeAnthropicAdmin
from tests.fake_openai_admin import FakeOpenAIAdmin


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY", "SPENDBOT_AWS_EXPORT_URI"):
        monkeypatch.delenv(name, raising=False)
    return {
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'spendbot.db'}",
        "SPENDBOT_NOW": "2026-11-20T09:00:00",
        "SPENDBOT_CONNECTOR_BACKOFF": "0",
        "SPENDBOT_CONNECTOR_RETRIES": "1",
    }


def test_sync_runs_each_configured_source_and_reports_failures(env: dict[str, str]):
    runner = CliRunner()
    with FakeOpenAIAdmin() as openai, FakeAnthropicAdmin() as anthropic:
        openai.add_cost(date(2026, 11, 3), "proj_a", "gpt-4o-2024-08-06, output", 12.5)
        openai.add_cost(date(2026, 10, 30), "proj_a", "gpt-4o-2024-08-06, input", 7.25)
        anthropic.fail(USAGE_PATH, 503, times=None)
        env |= {
            "OPENAI_ADMIN_KEY": openai.admin_key,
            "SPENDBOT_OPENAI_ADMIN_URL": openai.url,
            "SPENDBOT_OPENAI_ORGANIZATION_ID": "org-acme",
            "ANTHROPIC_ADMIN_KEY": anthropic.admin_key,
            "SPENDBOT_ANTHROPIC_ADMIN_URL": anthropic.url,
        }
        result = runner.invoke(app, ["sync"], env=env)
    assert result.exit_code == 1, result.output
    assert "openai: 2 rows for 2026-10, 2026-11" in result.output
    assert "EffectiveCost $19.75" in result.output
    assert (
        "anthropic: error: Anthropic: GET /v1/organizations/usage_report/messages" in result.output
    )
    assert "anthropic: nothing was loaded; the store is unchanged." in result.output
    assert anthropic.admin_key not in result.output and openai.admin_key not in result.output

    status = runner.invoke(app, ["ask", "what data do you have?", "--json"], env=env)
    assert status.exit_code == 0, status.output
    assert "openai costs+usage api" in status.output
    assert "org-acme" in status.output


def test_sync_of_an_unconfigured_source_says_so(env: dict[str, str]):
    result = CliRunner().invoke(app, ["sync", "openai"], env=env)
    assert result.exit_code == 2
    assert "openai is not configured" in result.output
    result = CliRunner().invoke(app, ["sync", "gcp"], env=env)
    assert result.exit_code == 2
    assert "unknown source 'gcp'" in result.output
