"""Sync status per source: recorded on success and failure, shown by data_status and /healthz."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select, text

from bot.pipeline import Assistant
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage.connectors import FolderExportConfig, sync_source
from storage.database import _alembic_config
from storage.ingest import IngestError
from storage.models import Base, cost_line_items
from tests.conftest import make_assistant
from tests.fake_slack import BotServer

NOW = datetime(2026, 11, 20, 6, 0)
LATER = datetime(2026, 11, 21, 6, 0)

HEADER = (
    "BillingAccountId,BillingCurrency,BillingPeriodStart,ChargePeriodStart,ChargePeriodEnd,"
    "ChargeCategory,BilledCost,EffectiveCost,ProviderName,Tags\n"
)


def run_folder(root: Path, run: str, costs: list[float]) -> None:
    """A one-file GCP export run for November with one row per cost."""
    folder = root / "BillingPeriod=2026-11" / run
    folder.mkdir(parents=True)
    rows = "".join(
        f"01A2B3-C4D5E6-F7A8B9,USD,2026-11-01T00:00:00Z,2026-11-{day:02d}T00:00:00Z,"
        f"2026-11-{day + 1:02d}T00:00:00Z,Usage,{cost},{cost},Google Cloud,"
        '"[{""key"": ""team"", ""value"": ""search""}]"\n'
        for day, cost in enumerate(costs, start=1)
    )
    (folder / "000000000000.csv").write_text(HEADER + rows)


def stored_total(engine: Engine) -> tuple[int, float]:
    with engine.connect() as connection:
        count, total = connection.execute(
            select(func.count(), func.sum(cost_line_items.c.effective_cost))
        ).one()
    return count, float(total)


@pytest.fixture
def synced_then_failed(tmp_path: Path, sqlite_engine: Engine) -> Engine:
    """gcp-exports synced (3 rows, 60.5) at NOW, then a failed attempt at LATER."""
    root = tmp_path / "gcs"
    run_folder(root, "20261120T060000", [10.0, 20.25, 30.25])
    config = FolderExportConfig("gcp", str(root))
    sync_source(sqlite_engine, "gcp-exports", config, now=NOW)
    # A later run whose cell is not a number: the load rolls back as a whole.
    run_folder(root, "20261121T060000", [1.0])
    bad = root / "BillingPeriod=2026-11" / "20261121T060000" / "000000000000.csv"
    bad.write_text(bad.read_text().replace(",1.0,", ",abc,", 1))
    with pytest.raises(IngestError):
        sync_source(sqlite_engine, "gcp-exports", config, now=LATER)
    return sqlite_engine


def test_failure_is_recorded_and_the_data_kept(synced_then_failed: Engine):
    assert stored_total(synced_then_failed) == (3, pytest.approx(60.5))
    with synced_then_failed.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT source, last_attempt_at, last_success_at, rows, last_error FROM connector_status"
            )
        ).all()
    [(source, attempt, success, count, error)] = rows
    assert (source, count) == ("gcp-exports", 3)
    assert str(attempt).startswith("2026-11-21 06:00") and str(success).startswith(
        "2026-11-20 06:00"
    )
    assert "BilledCost" in error and "not a number" in error


def test_a_later_success_clears_the_error(synced_then_failed: Engine, tmp_path: Path):
    root = tmp_path / "gcs"
    run_folder(root, "20261122T060000", [5.0])
    sync_source(synced_then_failed, "gcp-exports", FolderExportConfig("gcp", str(root)), now=LATER)
    with synced_then_failed.connect() as connection:
        row = connection.execute(
            text("SELECT rows, last_error, last_success_at FROM connector_status")
        ).one()
    assert row[0] == 1 and row[1] is None and str(row[2]).startswith("2026-11-21 06:00")


def test_data_status_answers_how_fresh_the_data_is(synced_then_failed: Engine):
    answer = make_assistant(synced_then_failed, LATER).ask_offline("how fresh is the data?", "u1")
    assert answer.tool_calls == [{"name": "data_status", "input": {}}]
    [status] = answer.reply.data["sources"]
    assert status["source"] == "gcp-exports" and status["rows"] == 3 and not status["ok"]
    assert status["last_success_at"] == "2026-11-20T06:00:00"
    assert "gcp-exports: last synced 2026-11-20 06:00 UTC (3 rows)" in answer.reply.context
    assert "failed" in answer.reply.context


def test_healthz_lists_each_sources_sync(synced_then_failed: Engine):
    settings = Settings(database_url=str(synced_then_failed.url), now=LATER)
    assistant = Assistant(settings, synced_then_failed, load_skills())
    with BotServer(build_server(settings, assistant)) as server:
        response = urllib.request.urlopen(f"{server.url}/healthz", timeout=5)
        health = json.loads(response.read())
        response.close()
    source = health["sources"]["gcp-exports"]
    assert health["status"] == "ok"
    assert (source["rows"], source["ok"], source["last_attempt_at"]) == (
        3,
        False,
        "2026-11-21T06:00:00",
    )


def test_the_migration_matches_the_model_and_downgrades(engine: Engine):
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [diff for diff in diffs if re.search(r"connector_status", repr(diff))] == []
    config = _alembic_config(engine)
    command.downgrade(config, "0008")
    with engine.connect() as connection:
        assert "connector_status" not in set(engine.dialect.get_table_names(connection))
    command.upgrade(config, "head")
