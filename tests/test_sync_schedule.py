"""Default daily sync jobs: one per configured source, kept once edited, run through the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.sync_schedule import ensure_daily_syncs, sync_schedule_id
from skills.catalog import load_skills
from storage import schedules
from storage.connector_status import source_statuses
from storage.models import cost_line_items

NOW = datetime(2026, 11, 20, 6, 0)


def gcp_export(root: Path) -> None:
    """One November run of a GCP FOCUS export with two rows."""
    folder = root / "BillingPeriod=2026-11" / "20261120T050000"
    folder.mkdir(parents=True)
    (folder / "000000000000.csv").write_text(
        "BillingAccountId,BillingCurrency,BillingPeriodStart,ChargePeriodStart,ChargePeriodEnd,"
        "ChargeCategory,BilledCost,EffectiveCost,ProviderName\n"
        "01A2B3,USD,2026-11-01,2026-11-02,2026-11-03,Usage,12.5,12.5,Google Cloud\n"
        "01A2B3,USD,2026-11-01,2026-11-03,2026-11-04,Usage,7.5,7.5,Google Cloud\n"
    )


def test_each_configured_source_gets_one_daily_job(tmp_path: Path, sqlite_engine: Engine):
    settings = Settings(gcp_export_folder=str(tmp_path), onprem_gpus=True)
    added = ensure_daily_syncs(sqlite_engine, settings, NOW)
    assert {(s.id, s.kind, s.args["source"]) for s in added} == {
        ("sync:default:source=gcp-exports", "sync", "gcp-exports"),
        ("sync:default:source=onprem-gpus", "sync", "onprem-gpus"),
    }
    assert {s.next_run for s in added} == {datetime(2026, 11, 21, 5, 0)}
    # Paused by someone: a restart neither adds a copy nor resumes it.
    assert schedules.pause(sqlite_engine, sync_schedule_id("gcp-exports"))
    assert ensure_daily_syncs(sqlite_engine, settings, NOW) == []
    assert schedules.get(sqlite_engine, sync_schedule_id("gcp-exports")).paused
    assert len(schedules.list_schedules(sqlite_engine)) == 2


def test_a_fire_of_the_job_syncs_its_source(tmp_path: Path, sqlite_engine: Engine):
    gcp_export(tmp_path)
    settings = Settings(
        database_url=str(sqlite_engine.url), now=NOW, gcp_export_folder=str(tmp_path)
    )
    ensure_daily_syncs(sqlite_engine, settings, NOW)
    assistant = Assistant(settings, sqlite_engine, load_skills())
    scheduler = Scheduler(JobRuntime(assistant, notifier(settings)), replica="test")
    event = scheduler.fire(sync_schedule_id("gcp-exports"), datetime.now(UTC))
    assert event is not None and event.retval == "gcp-exports: 2 rows"
    with sqlite_engine.connect() as connection:
        total = connection.execute(select(func.sum(cost_line_items.c.effective_cost))).scalar()
    assert total == 20.0
    [status] = source_statuses(sqlite_engine)
    assert (status.source, status.rows, status.last_error) == ("gcp-exports", 2, None)


def test_an_unreadable_price_table_is_logged_not_fatal(
    tmp_path: Path, sqlite_engine: Engine, caplog
):
    settings = Settings(onprem_gpus=True, onprem_gpu_price_table=str(tmp_path / "missing.csv"))
    assert ensure_daily_syncs(sqlite_engine, settings, NOW) == []
    assert "missing.csv: not a GPU price table" in caplog.text
