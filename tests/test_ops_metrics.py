"""Scheduled runs, loads and Slack listener failures reach the server's /metrics."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, text

from bot.jobs import JobRuntime
from bot.metrics import Metrics
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from bot.sync_schedule import ensure_daily_syncs, sync_schedule_id
from skills.catalog import load_skills
from storage import schedules
from tests.demo_store import fake_slack_fixture
from tests.fake_slack import BotServer, FakeSlack, event_body, post, signed
from tests.test_observability import scrape, value
from tests.test_sync_schedule import NOW, gcp_export

SECRET = "ops-metrics-signing-secret"
RUNS = "spendbot_scheduler_runs_total"
ERRORS = "spendbot_errors_total"

fake = fake_slack_fixture()


def test_scheduled_runs_and_synced_rows_are_counted_by_kind_and_outcome(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    gcp_export(tmp_path)  # two FOCUS rows
    settings = Settings(
        database_url=str(sqlite_engine.url), now=NOW, gcp_export_folder=str(tmp_path)
    )
    ensure_daily_syncs(sqlite_engine, settings, NOW)
    schedules.add(
        sqlite_engine, "sync:unconfigured", kind="sync", target=None,
        args={"source": "aws-exports"}, trigger=CronTrigger(hour=5, timezone=UTC), when="test",
        now=NOW,
    )  # fmt: skip
    assistant = Assistant(settings, sqlite_engine, load_skills())
    metrics = Metrics()
    with BotServer(build_server(settings, assistant, metrics=metrics)) as server:
        scheduler = Scheduler(JobRuntime(assistant, notifier(settings)), replica="test")
        gcp = sync_schedule_id("gcp-exports")
        now = datetime.now(UTC)
        assert scheduler.fire(gcp, now) is not None
        assert scheduler.fire(gcp, now) is None  # already claimed: skipped
        assert scheduler.fire("sync:unconfigured", now).exception is not None
        assert scheduler.fire(gcp, now - timedelta(days=1)) is not None  # past the grace time
        samples = scrape(server)

    assert value(samples, RUNS, job="sync", outcome="ok") == 1
    assert value(samples, RUNS, job="sync", outcome="skipped") == 1
    assert value(samples, RUNS, job="sync", outcome="failed") == 1
    assert value(samples, RUNS, job="sync", outcome="missed") == 1
    # Only the run that went ahead loaded anything; the missed one read nothing.
    assert value(samples, "spendbot_ingest_rows_total", source="gcp-exports") == 2
    assert value(samples, ERRORS, where="scheduler") == 1


def test_gpu_samples_and_failing_slack_listeners_are_counted(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    settings = Settings(
        database_url=str(sqlite_engine.url),
        now=NOW,
        agent_tokens="tok-a",
        SLACK_BOT_TOKEN="xoxb-ops",
        SLACK_SIGNING_SECRET=SECRET,
        slack_api_url=f"{fake.url}/api/",
    )
    samples_sent = [
        {"host": "h1", "gpu_index": i, "sampled_at": "2026-11-20T05:00:00", "utilization_pct": 1}
        for i in range(3)
    ]
    assistant = Assistant(settings, sqlite_engine, load_skills())
    with BotServer(build_server(settings, assistant)) as server:
        for batch in (samples_sent[:2], samples_sent[2:]):
            response = post(
                f"{server.url}/api/gpu-metrics",
                json.dumps({"samples": batch}).encode(),
                {"Authorization": "Bearer tok-a"},
            )
            assert response.status == 202
        before = scrape(server)
        # Without its delivery table the mention listener cannot claim the event and raises.
        with sqlite_engine.begin() as connection:
            connection.execute(text("DROP TABLE slack_events"))
        mention = {"type": "app_mention", "user": "U1", "text": "<@UBOT> spend", "channel": "C1"}
        body = event_body({**mention, "ts": "1800000000.000001"}, "Ev-ops-1")
        assert (
            post(
                f"{server.url}/slack/events",
                body,
                signed(SECRET, body, content_type="application/json"),
            ).status
            == 200
        )
        for _ in range(500):
            after = scrape(server)
            if value(after, ERRORS, where="slack"):
                break
            threading.Event().wait(0.02)
    assert value(before, "spendbot_ingest_rows_total", source="gpu_agent") == 3
    assert value(before, ERRORS, where="slack") is None
    assert value(after, ERRORS, where="slack") == 1
