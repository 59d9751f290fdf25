"""Scheduled jobs: persistence across restarts, misfires, one run per fire across schedulers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from apscheduler.events import EVENT_JOB_SUBMITTED
from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from bot.cli import app
from bot.jobs import JobRuntime
from bot.notify import Notifier, notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.settings import Settings
from skills.catalog import load_skills
from skills.replies import Reply
from storage import budgets as budget_store
from storage import schedules
from storage.database import _alembic_config, create_db_engine, open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from storage.models import Base, job_runs
from tests.demo_store import fake_slack_fixture
from tests.fake_slack import FakeSlack, event_body, post, signed
from tests.guarded_fakes import grant
from tests.postgres_server import free_port

NOW = datetime(2026, 11, 25, 12)  # a Wednesday: "last week" is 2026-11-16..22
JOB = "digest:slack:#finops"


fake = fake_slack_fixture()


def assistant_on(engine: Engine, fake: FakeSlack) -> Assistant:
    settings = Settings(
        database_url=str(engine.url),
        now=NOW,
        slack_bot_token="xoxb-test",
        slack_api_url=f"{fake.url}/api/",
    )
    return Assistant(settings, engine, load_skills())


def scheduler_on(engine: Engine, fake: FakeSlack, name: str, poll: float = 30) -> Scheduler:
    assistant = assistant_on(engine, fake)
    return Scheduler(JobRuntime(assistant, notifier(assistant.settings)), replica=name, poll=poll)


def headline_posts(fake: FakeSlack) -> list:
    """Top-level messages (details go in their threads)."""
    return [call for call in fake.of("chat.postMessage") if not call.params.get("thread_ts")]


def add_digest(engine: Engine, trigger: CronTrigger, now: datetime) -> None:
    schedules.add(
        engine, JOB, kind="digest", target="slack:#finops", args={}, trigger=trigger,
        when="test", now=now,
    )  # fmt: skip


def past_seconds(minutes_ago: int) -> tuple[CronTrigger, datetime]:
    """A daily trigger firing three times, 10 s apart, `minutes_ago` minutes back; its first fire."""
    first = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    trigger = CronTrigger(hour=first.hour, minute=first.minute, second="0,10,20", timezone=UTC)
    return trigger, first


def runs(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(job_runs.c.fire_time, job_runs.c.claimed_by, job_runs.c.outcome)
            )
        ]


def submitted(scheduler: Scheduler) -> threading.Event:
    seen = threading.Event()
    scheduler.jobs.add_listener(lambda event: seen.set(), EVENT_JOB_SUBMITTED)
    return seen


def wait_finished(engine: Engine, count: int = 1) -> None:
    for _ in range(750):
        if sum(1 for run in runs(engine) if run[2] is not None) >= count:
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"no finished run: {runs(engine)}")


def test_schedule_skills_create_list_pause_and_delete_through_the_guard(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    assistant = assistant_on(sqlite_engine, fake)
    ask = "weekly digest to #finops every Monday at 9:00 Europe/Berlin"
    refused = assistant.ask(ask, "terminal:guest").reply
    assert refused.is_error and "finops" in refused.text
    grant(sqlite_engine, "terminal:lead", "finops")
    created = assistant.ask(ask, "terminal:lead").reply
    assert not created.is_error, created.text
    # Monday 2026-11-30 09:00 in Berlin (CET, UTC+1) is 08:00 UTC.
    assert "Next run: 2026-11-30 08:00 UTC" in created.text
    digest = schedules.get(sqlite_engine, JOB)
    assert (digest.target, digest.next_run) == ("slack:#finops", datetime(2026, 11, 30, 8))
    scan = assistant.ask("daily anomaly scan at 8:00 to #alerts", "terminal:lead").reply
    assert not scan.is_error, scan.text
    daily = schedules.get(sqlite_engine, "anomaly_scan:slack:#alerts")
    assert (daily.kind, daily.next_run) == ("anomaly_scan", datetime(2026, 11, 26, 8))
    listed = assistant.ask("list schedules", "terminal:guest").reply
    assert [row[0] for row in listed.table.rows] == ["anomaly_scan:slack:#alerts", JOB]
    assert assistant.ask("pause the digest", "terminal:guest").reply.is_error
    assert not assistant.ask("pause the digest", "terminal:lead").reply.is_error
    assert schedules.get(sqlite_engine, JOB).paused
    deleted = assistant.ask("delete the digest schedule", "terminal:lead").reply
    assert f"Deleted: {JOB}." in deleted.text
    assert [item.id for item in schedules.list_schedules(sqlite_engine)] == [
        "anomaly_scan:slack:#alerts"
    ]


def test_a_job_survives_a_restart_and_missed_fires_run_once(
    tmp_path: Path, fake: FakeSlack
) -> None:
    url = f"sqlite:///{tmp_path / 'spendbot.db'}"
    engine = open_database(url)
    frame = generate_demo_focus(date(2026, 11, 24), days=30)
    ingest_frame(engine, frame, "demo")
    trigger, first = past_seconds(10)
    add_digest(engine, trigger, first - timedelta(seconds=1))
    engine.dispose()

    # A fresh process: a new engine and scheduler find the job and run its missed fires once.
    engine = create_db_engine(url)
    assert schedules.get(engine, JOB).next_run == first.replace(tzinfo=None)
    restarted = scheduler_on(engine, fake, "second")
    restarted.start()
    fake.wait_for("chat.postMessage")
    wait_finished(engine)
    restarted.shutdown()
    assert runs(engine) == [(first.replace(tzinfo=None) + timedelta(seconds=20), "second", "ok")]
    (posted,) = headline_posts(fake)
    assert posted.params["channel"] == "#finops"
    charges = frame[pd.to_datetime(frame["ChargePeriodStart"]).dt.date.between(
        date(2026, 11, 16), date(2026, 11, 22)
    )]  # fmt: skip
    assert f"${charges['EffectiveCost'].sum():,.2f}" in posted.params["text"]
    # The chart and the table go in the digest's thread.
    (details,) = [call for call in fake.of("chat.postMessage") if call.params.get("thread_ts")]
    (upload,) = fake.of("files.completeUploadExternal")
    assert upload.params["thread_ts"] == details.params["thread_ts"] == "1800000000.000001"

    # Crash before the job store moved on: the same fires are due again, the lease says done.
    store = schedules.job_store(engine)
    store.start(restarted.jobs, schedules.STORE)
    job = store.lookup_job(JOB)
    job._modify(next_run_time=first)
    store.update_job(job)
    again = scheduler_on(engine, fake, "third")
    seen = submitted(again)
    again.start()
    assert seen.wait(15)
    again.shutdown()
    assert len(headline_posts(fake)) == 1
    assert len(runs(engine)) == 1
    engine.dispose()


def test_a_running_scheduler_picks_up_a_job_added_elsewhere(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    scheduler = scheduler_on(sqlite_engine, fake, "running", poll=0.1)
    scheduler.start()
    trigger, first = past_seconds(1)
    add_digest(sqlite_engine, trigger, first - timedelta(seconds=1))
    fake.wait_for("chat.postMessage")
    wait_finished(sqlite_engine)
    scheduler.shutdown()
    assert [run[1:] for run in runs(sqlite_engine)] == [("running", "ok")]


def test_a_run_lost_with_its_replica_is_taken_over_once(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    add_digest(sqlite_engine, CronTrigger(hour=9, minute=0, timezone=UTC), datetime.now(UTC))
    fired = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    # A replica claimed this fire 35 minutes ago and died before finishing it.
    lost_at = (fired + timedelta(minutes=5)).replace(tzinfo=None)
    assert schedules.claim_run(sqlite_engine, JOB, fired, "died", lost_at)
    # A claim younger than the lease is left alone.
    assert schedules.claim_run(
        sqlite_engine, "other", fired, "busy", lost_at + timedelta(minutes=34)
    )
    scheduler = scheduler_on(sqlite_engine, fake, "survivor", poll=0.1)
    scheduler.start()
    fake.wait_for("chat.postMessage")
    wait_finished(sqlite_engine)
    scheduler.shutdown()
    assert sorted(runs(sqlite_engine)) == [
        (fired.replace(tzinfo=None), "busy", None),
        (fired.replace(tzinfo=None), "survivor", "ok"),
    ]
    assert len(headline_posts(fake)) == 1


def test_a_fire_later_than_the_grace_time_is_recorded_as_missed(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    late = schedules.GRACE_SECONDS // 60 + 30
    trigger, first = past_seconds(late)
    add_digest(sqlite_engine, trigger, first - timedelta(seconds=1))
    scheduler = scheduler_on(sqlite_engine, fake, "only")
    scheduler.start()
    wait_finished(sqlite_engine)
    scheduler.shutdown()
    assert [run[1:] for run in runs(sqlite_engine)] == [("only", "missed")]
    assert headline_posts(fake) == []


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_post_each_fire_once(
    postgres_url: str, fake: FakeSlack
) -> None:
    engines = [open_database(postgres_url), create_db_engine(postgres_url)]
    trigger, first = past_seconds(5)
    add_digest(engines[0], trigger, first - timedelta(seconds=1))
    pair = [scheduler_on(engine, fake, name) for engine, name in zip(engines, "AB", strict=True)]
    for scheduler in pair:
        scheduler.start(paused=True)
    for scheduler in pair:
        scheduler.resume()
    fake.wait_for("chat.postMessage")
    wait_finished(engines[0])
    # Both replicas now fire the very same (job, fire time) at once: one of them runs it.
    fire_time = datetime.now(UTC).replace(microsecond=0)
    results: list = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.fire(JOB, fire_time))) for s in pair
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for scheduler in pair:
        scheduler.shutdown()
    assert sorted(result is None for result in results) == [False, True]
    assert len(headline_posts(fake)) == 2
    recorded = runs(engines[0])
    assert sorted(fire for fire, _, _ in recorded) == [
        first.replace(tzinfo=None) + timedelta(seconds=20),
        fire_time.replace(tzinfo=None),
    ]
    assert all(outcome == "ok" and who in ("A", "B") for _, who, outcome in recorded)
    for engine in engines:
        engine.dispose()


# Two `spendbot serve` replicas on one PostgreSQL ------------------------------------------------

SECRET = "replica-secret"


def start_replica(url: str, fake: FakeSlack, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "SPENDBOT_DATABASE_URL": url,
        "SPENDBOT_PORT": str(port),
        "SPENDBOT_NOW": NOW.isoformat(),
        "SLACK_BOT_TOKEN": "xoxb-replica",
        "SLACK_SIGNING_SECRET": SECRET,
        "SPENDBOT_SLACK_API_URL": f"{fake.url}/api/",
    }
    for name in ("SLACK_APP_TOKEN", "ANTHROPIC_API_KEY", "SPENDBOT_SCHEDULER"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--log-format", "text"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen, url: str) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if json.loads(response.read())["status"] == "ok":
                    return
        except OSError:
            assert process.poll() is None, "spendbot serve exited"
        threading.Event().wait(0.1)
    raise AssertionError(f"{url} never became healthy")


def wait_for_line(logs: list[Path], text: str) -> None:
    for _ in range(750):
        if any(text in path.read_text() for path in logs):
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"no {text!r} in the replicas' logs")


@pytest.mark.postgres
def test_two_serve_replicas_post_a_due_digest_once_and_answer_an_event_once(
    postgres_url: str, fake: FakeSlack, tmp_path: Path
) -> None:
    engine = open_database(postgres_url)
    trigger, first = past_seconds(2)
    add_digest(engine, trigger, first - timedelta(seconds=1))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    replicas = [start_replica(postgres_url, fake, log) for log in logs]
    try:
        for process, url in replicas:
            wait_healthy(process, url)
        fake.wait_for("chat.postMessage")
        wait_finished(engine)
        event = {
            "type": "app_mention",
            "user": "U1",
            "text": "<@UBOT> help",
            "ts": "1800000200.000001",
            "channel": "C1",
        }
        body = event_body(event, "EvBoth")
        for _, url in replicas:
            headers = signed(SECRET, body, content_type="application/json")
            assert post(f"{url}/slack/events", body, headers).status == 200
        fake.wait_for("chat.update")
        wait_for_line(logs, "event EvBoth already answered or being answered; skipped")
    finally:
        for process, _ in replicas:
            process.send_signal(signal.SIGINT)
        for process, _ in replicas:
            process.wait(15)
    digests = [call for call in headline_posts(fake) if call.params["channel"] == "#finops"]
    assert len(digests) == 1
    assert [run[2] for run in runs(engine)] == ["ok"]
    answers = [call for call in fake.of("chat.postMessage") if call.params["channel"] == "C1"]
    assert len(answers) == 1 and len(fake.of("chat.update")) == 1
    engine.dispose()


def test_the_migration_matches_the_models_and_downgrades(engine: Engine) -> None:
    mine = ("apscheduler_jobs", "job_runs", "anomaly_alerts")
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    pattern = re.compile(rf"['<]({'|'.join(mine)})['>]|ix_({'|'.join(mine)})_")
    assert [diff for diff in diffs if pattern.search(repr(diff))] == []
    config = _alembic_config(engine)
    command.downgrade(config, "0007")
    with engine.connect() as connection:
        assert not set(mine) & set(engine.dialect.get_table_names(connection))
    command.upgrade(config, "head")


class RecordingPoster:
    """A platform poster with only `post`, as a Teams poster has."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []

    def post(self, conversation: str, reply: Reply) -> str:
        self.posts.append((conversation, reply.text))
        return f"activity-{len(self.posts)}"


def test_the_notifier_routes_targets_by_platform_and_reposts_where_it_cannot_update() -> None:
    teams = RecordingPoster()
    notify = Notifier({"teams": teams})
    message = notify.post("teams:19:abc@thread.v2", Reply(text="first"))
    assert message == "teams:activity-1"
    again = notify.update(message, Reply(text="second"), "teams:19:abc@thread.v2")
    assert again == "teams:activity-2"
    assert teams.posts == [("19:abc@thread.v2", "first"), ("19:abc@thread.v2", "second")]
    with pytest.raises(ValueError, match="no poster for 'slack'"):
        notify.post("slack:#finops", Reply(text="x"))


def test_the_budget_check_job_posts_each_crossed_threshold_once(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    frame = generate_demo_focus(date(2026, 11, 24), days=30)
    ingest_frame(sqlite_engine, frame, "demo")
    month = frame[pd.to_datetime(frame["ChargePeriodStart"]) >= pd.Timestamp(2026, 11, 1)]
    spent = month["EffectiveCost"].sum()
    with sqlite_engine.begin() as connection:
        budget_store.upsert(
            connection, scope="*", scope_value="", period="monthly", amount=spent / 0.9,
            currency="USD", by="test", at=NOW, notify="slack:#budgets",
        )  # fmt: skip
    schedules.add(
        sqlite_engine, "budget_check:default", kind="budget_check", target=None, args={},
        trigger=CronTrigger(hour=9, minute=0, timezone=UTC), when="daily", now=NOW,
    )  # fmt: skip
    scheduler = scheduler_on(sqlite_engine, fake, "only")
    first = scheduler.fire("budget_check:default", datetime.now(UTC))
    second = scheduler.fire("budget_check:default", datetime.now(UTC) + timedelta(seconds=1))
    assert (first.retval, second.retval) == ("2 budget alert(s)", "0 budget alert(s)")
    posts = headline_posts(fake)
    assert {call.params["channel"] for call in posts} == {"#budgets"}
    texts = [call.params["text"] for call in posts]
    # 50% and 80% of actual were crossed (90% spent), and the forecast passes 100%.
    assert any(f"has spent ${spent:,.2f}, 90%" in text for text in texts), texts
    assert any("is forecast to spend" in text for text in texts), texts


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    day=st.sampled_from(DAYS),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(ZONES),
    abbreviated=st.booleans(),
)
def test_weekly_phrases_parse_and_fire_at_that_local_time(
    sqlite_engine: Engine, day: str, hour: int, minute: int, zone: str, abbreviated: bool
) -> None:
    name = day[:3] if abbreviated else day
    text = f"weekly digest to #finops every {name} at {hour}:{minute:02d} {zone}"
    skill = load_skills().get("schedule_create")
    assistant = Assistant(Settings(now=NOW), sqlite_engine, load_skills())
    args = skill.parse_text(text, assistant.context("terminal:x"))
    assert (args.kind, args.target, args.frequency) == ("digest", "slack:#finops", "weekly")
    assert (args.day, args.time, args.timezone) == (
        day[:3].lower(),
        f"{hour:02d}:{minute:02d}",
        zone,
    )
    # Independently: the first fire after NOW is within a week, on that local day and time.
    fire = args.trigger().get_next_fire_time(None, NOW.replace(tzinfo=UTC))
    local = fire.astimezone(ZoneInfo(zone))
    assert (local.strftime("%A"), local.hour, local.minute) == (day, hour, minute)
    assert timedelta(0) < fire - NOW.replace(tzinfo=UTC) <= timedelta(days=7)


def test_the_slack_poster_waits_out_a_rate_limit_and_posts_once(fake: FakeSlack) -> None:
    fake.rate_limit["chat.postMessage"] = 1
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=f"{fake.url}/api/")
    message = notifier(settings).post("slack:C0RATE", Reply(text="Weekly digest: $1.00"))
    assert message == "slack:C0RATE:1800000000.000001"
    assert fake.attempts["chat.postMessage"] == 2
    (posted,) = fake.of("chat.postMessage")
    assert posted.params["text"] == "Weekly digest: $1.00"


def test_schedules_cli_lists_jobs_and_runs_one_now(
    tmp_path: Path, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'spendbot.db'}"
    engine = open_database(url)
    add_digest(engine, CronTrigger(day_of_week="mon", hour=8, minute=0, timezone=UTC), NOW)
    for name, value in {
        "SPENDBOT_DATABASE_URL": url,
        "SPENDBOT_NOW": NOW.isoformat(),
        "SLACK_BOT_TOKEN": "xoxb-cli",
        "SPENDBOT_SLACK_API_URL": f"{fake.url}/api/",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    ran = runner.invoke(app, ["schedules", "run-now", JOB])
    assert ran.exit_code == 0, ran.output
    assert len(headline_posts(fake)) == 1
    listed = runner.invoke(app, ["schedules", "list", "--runs", "1"])
    assert listed.exit_code == 0, listed.output
    assert f"{JOB}: digest to slack:#finops, test; next 2026-11-30 08:00 UTC" in listed.output
    assert " ok on " in listed.output
    missing = runner.invoke(app, ["schedules", "run-now", "nope"])
    assert missing.exit_code == 1
    engine.dispose()
