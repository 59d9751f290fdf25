"""Housekeeping: delivery claims and job runs past their retention go; deduplication stays."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.housekeeping import SCHEDULE_ID, ensure_daily_housekeeping, housekeep
from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage import schedules
from storage.clock import utc_now
from storage.deliveries import claim, finish, prune
from tests.demo_store import fake_slack_fixture
from tests.fake_slack import BOT_USER, BotServer, FakeSlack, event_body, post, signed

T0 = datetime(2026, 11, 29, 12, 0)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

fake = fake_slack_fixture()


def delivery(engine: Engine, key: str, claimed: datetime, done: datetime | None = None) -> None:
    assert claim(engine, key, claimed)
    if done is not None:
        finish(engine, key, done)


def job_run(engine: Engine, job_id: str, claimed: datetime) -> None:
    fire_time = claimed.replace(tzinfo=UTC)
    assert schedules.claim_run(engine, job_id, fire_time, "replica-a", claimed)
    schedules.finish_run(engine, job_id, fire_time, outcome="ok", detail="", now=claimed)


def event_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT event_id FROM slack_events")).scalars())


def run_jobs(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT job_id FROM job_runs")).scalars())


def test_claims_last_touched_before_the_cutoff_are_deleted(engine: Engine) -> None:
    cutoff = T0 - timedelta(hours=48)
    delivery(engine, "old-done", T0 - timedelta(hours=50), T0 - timedelta(hours=50))
    delivery(engine, "old-lost", T0 - timedelta(hours=49))
    # Claimed before the cut-off, answered after it: its answer is recent, so it stays.
    delivery(engine, "slow-answer", T0 - timedelta(hours=49), T0 - timedelta(hours=47))
    delivery(engine, "young-done", T0 - timedelta(hours=1), T0 - timedelta(minutes=59))
    delivery(engine, "running", T0 - timedelta(minutes=1))

    assert prune(engine, cutoff, dry_run=True) == 2
    assert len(event_ids(engine)) == 5
    assert prune(engine, cutoff) == 2
    assert event_ids(engine) == {"slow-answer", "young-done", "running"}
    assert prune(engine, cutoff) == 0

    # The kept claims still deduplicate: a retry of each is not answered again.
    assert claim(engine, "young-done", T0) is False
    assert claim(engine, "running", T0) is False
    assert claim(engine, "slow-answer", T0) is False


def test_housekeeping_prunes_both_tables_and_logs_one_json_line(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=str(engine.url), delivery_retention_hours=24)
    delivery(engine, "day-old", T0 - timedelta(hours=25), T0 - timedelta(hours=25))
    delivery(engine, "fresh", T0 - timedelta(hours=23), T0 - timedelta(hours=23))
    job_run(engine, "digest:old", T0 - timedelta(days=91))
    job_run(engine, "digest:older", T0 - timedelta(days=200))
    job_run(engine, "digest:recent", T0 - timedelta(days=89))

    with caplog.at_level(logging.INFO, logger="bot.housekeeping"):
        pruned = housekeep(engine, settings, T0)

    assert (pruned.deliveries, pruned.job_runs) == (1, 2)
    assert event_ids(engine) == {"fresh"}
    assert run_jobs(engine) == {"digest:recent"}
    [record] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "bot.housekeeping"]
    assert record["event"] == "housekeeping"
    assert (record["deliveries"], record["job_runs"], record["dry_run"]) == (1, 2, False)
    assert record["deliveries_before"] == "2026-11-28T12:00:00"
    assert record["job_runs_before"] == "2026-08-31T12:00:00"


def test_the_daily_job_is_added_once_and_fires_once_per_fire_time(engine: Engine) -> None:
    added = ensure_daily_housekeeping(engine, T0)
    assert added is not None and added.kind == "housekeeping"
    assert added.next_run == datetime(2026, 11, 30, 3, 30)
    # Paused by someone: a restart neither adds a copy nor resumes it.
    assert schedules.pause(engine, SCHEDULE_ID)
    assert ensure_daily_housekeeping(engine, T0) is None
    assert schedules.get(engine, SCHEDULE_ID).paused

    now = utc_now()
    delivery(engine, "Ev-old", now - timedelta(hours=72), now - timedelta(hours=72))
    delivery(engine, "Ev-young", now - timedelta(hours=2), now - timedelta(hours=2))
    job_run(engine, "sync:old", now - timedelta(days=120))

    settings = Settings(database_url=str(engine.url))
    assistant = Assistant(settings, engine, load_skills())
    runtime = JobRuntime(assistant, notifier(settings))
    replicas = [Scheduler(runtime, replica=name) for name in ("a", "b")]
    fire_time = datetime.now(UTC).replace(microsecond=0)
    events = [replica.fire(SCHEDULE_ID, fire_time) for replica in replicas]

    ran = [event for event in events if event is not None]
    assert len(ran) == 1
    assert ran[0].retval == "deleted 1 delivery claim(s) and 1 job run(s)"
    assert event_ids(engine) == {"Ev-young"}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT job_id, outcome FROM job_runs")).all()
    assert [tuple(row) for row in rows] == [(SCHEDULE_ID, "ok")]


def test_cli_dry_run_counts_and_the_real_run_deletes(engine: Engine) -> None:
    now = utc_now()
    delivery(engine, "Ev-stale", now - timedelta(hours=60), now - timedelta(hours=60))
    delivery(engine, "Ev-recent", now - timedelta(hours=30), now - timedelta(hours=30))
    env = {"SPENDBOT_DATABASE_URL": str(engine.url.render_as_string(hide_password=False))}
    runner = CliRunner()

    dry = runner.invoke(app, ["housekeeping", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 delivery claim(s) and 0 job run(s)" in dry.output
    assert event_ids(engine) == {"Ev-stale", "Ev-recent"}

    env["SPENDBOT_DELIVERY_RETENTION_HOURS"] = "24"
    done = runner.invoke(app, ["housekeeping"], env=env)
    assert done.exit_code == 0, done.output
    assert "deleted 2 delivery claim(s)" in done.output
    assert event_ids(engine) == set()


def test_a_retention_shorter_than_the_platforms_retry_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(delivery_retention_hours=1)


def test_a_redelivered_event_after_housekeeping_is_still_answered_once(
    fake: FakeSlack, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack_app")
    settings = Settings(
        database_url=str(sqlite_engine.url),
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        slack_api_url=f"{fake.url}/api/",
        scheduler=False,
    )
    assistant = Assistant(settings, sqlite_engine, load_skills())
    event = {
        "type": "app_mention",
        "user": "U100",
        "text": f"<@{BOT_USER}> help",
        "ts": "1799999999.000100",
        "channel": "C100",
        "event_ts": "1799999999.000100",
    }
    body = event_body(event, "EvHouse")
    old = utc_now() - timedelta(days=3)
    delivery(sqlite_engine, "EvAncient", old, old)
    skipped = threading.Event()

    class Skips(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "EvHouse already answered" in record.getMessage():
                skipped.set()

    handler = Skips()
    logging.getLogger("bot.slack_app").addHandler(handler)
    try:
        with BotServer(build_server(settings, assistant)) as server:
            url = f"{server.url}/slack/events"
            post(url, body, signed(SECRET, body, content_type="application/json"))
            fake.wait_for("chat.update")
            assert housekeep(sqlite_engine, settings, utc_now()).deliveries == 1
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            post(url, body, {**signed(SECRET, body, content_type="application/json"), **retry})
            assert skipped.wait(15), "the retry was not deduplicated"
    finally:
        logging.getLogger("bot.slack_app").removeHandler(handler)
    assert event_ids(sqlite_engine) == {"EvHouse"}
    assert len(fake.of("chat.postMessage")) == 1
    assert len(fake.of("chat.update")) == 1
