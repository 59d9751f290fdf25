"""Anomaly alerts on Teams: cards posted once, updated in place, feedback submits, thread questions.

The data plants two root causes (a level shift on one GPU instance, a gpt-4o spike); a daily scan
targets the FinOps channel, and the fake Bot Connector records the cards sent and replaced.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, select

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage import schedules, teams_refs
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from storage.models import anomaly_alerts, audit_log
from tests.fake_bot_connector import (
    BOT_ID,
    CHANNEL,
    TENANT,
    FakeBotConnector,
    activity,
    channel_conversation,
    channel_data,
    mention,
    user,
)
from tests.fake_slack import BotServer
from tests.guarded_fakes import grant
from tests.test_teams import RecordingAssistant, send
from tests.test_teams_render import assert_valid_card

END = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 12)
JOB = "anomaly_scan:teams:finops"
FRAME = generate_demo_focus(END, days=120)
P5_RESOURCE = FRAME[FRAME["ChargeDescription"].fillna("").str.contains("p5.48xlarge", regex=False)][
    "ResourceId"
].iloc[0]
FEEDBACK_TITLES = ["Expected", "Planned", "Not an issue", "Snooze 7 days"]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("teams_alerts") / "demo.db"
    engine = open_database(f"sqlite:///{path}")
    ingest_frame(engine, FRAME, "demo")
    engine.dispose()
    return path


@pytest.fixture
def engine(demo_file: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "spendbot.db"
    shutil.copy(demo_file, path)
    engine = open_database(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def fake() -> Iterator[FakeBotConnector]:
    with FakeBotConnector() as fake:
        yield fake


@pytest.fixture
def settings(engine: Engine, fake: FakeBotConnector) -> Settings:
    """Settings with the FinOps channel known, as after the app was installed there; Bob is FinOps."""
    grant(engine, "teams:aad-bob")
    teams_refs.save(
        engine,
        {
            "channelId": "msteams",
            "serviceUrl": fake.url,
            "conversation": {"id": CHANNEL, "conversationType": "channel"},
            "bot": {"id": BOT_ID, "name": "spendbot"},
        },
        kind="channel",
        name="finops",
        tenant_id=TENANT,
        now=NOW,
    )
    return Settings(database_url=str(engine.url), now=NOW)


@pytest.fixture
def scan(engine: Engine, settings: Settings) -> Any:
    """One fire of the daily scan targeting ``teams:finops``, as ``schedules run-now`` does."""
    schedules.add(
        engine, JOB, kind="anomaly_scan", target="teams:finops", args={},
        trigger=CronTrigger(hour=8, timezone=UTC), when="daily at 08:00 UTC", now=NOW,
    )  # fmt: skip
    runtime = JobRuntime(Assistant(settings, engine, load_skills()), notifier(settings, engine))
    scheduler = Scheduler(runtime, replica="r1")

    def fire() -> None:
        event = scheduler.fire(JOB, datetime.now(UTC))
        assert event is not None and event.exception is None, event and event.exception

    return fire


def stored(engine: Engine) -> dict[str, dict]:
    with engine.connect() as connection:
        rows = connection.execute(select(anomaly_alerts)).mappings().all()
    return {json.loads(row["alert_json"])["alert"]["key"]: dict(row) for row in rows}


def feedback_submit(
    fake: FakeBotConnector, card_id: str, feedback: str, alert_id: int, who: str = "bob"
) -> dict:
    """Bob (or `who`) presses a feedback button on the alert card `card_id` (its thread's root)."""
    return activity(
        fake.url,
        conversation=channel_conversation(card_id),
        channelData=channel_data(),
        sender=user(f"aad-{who}", who.title()),
        value={"verb": "alert_feedback", "feedback": feedback, "alert_id": alert_id},
        replyToId=card_id,
    )


def test_alert_cards_are_posted_once_updated_in_place_and_muted_by_feedback(
    fake: FakeBotConnector, engine: Engine, settings: Settings, scan: Any
) -> None:
    scan()
    posted = fake.cards("send")
    assert len(posted) == 2
    by_key = stored(engine)
    assert set(by_key) == {P5_RESOURCE, "gpt-4o"}
    # Each alert remembers its card: the channel and the activity id the connector gave it.
    assert sorted((row["channel"], row["message_ts"]) for row in by_key.values()) == sorted(
        (f"teams:{CHANNEL}", call.id) for call, _ in posted
    )
    for call, card in posted:
        assert call.conversation == CHANNEL
        assert_valid_card(card)
        (alert,) = [row for row in by_key.values() if row["message_ts"] == call.id]
        assert [action["title"] for action in card["actions"]] == FEEDBACK_TITLES
        assert {action["data"]["alert_id"] for action in card["actions"]} == {alert["id"]}

    # The anomalies persist a day later: both cards are replaced where they are, none is added.
    scan()
    assert len(fake.cards("send")) == 2
    assert sorted(call.activity_id for call, _ in fake.cards("update")) == sorted(
        row["message_ts"] for row in by_key.values()
    )

    spike = by_key["gpt-4o"]
    submit = feedback_submit(fake, spike["message_ts"], "not_an_issue", spike["id"])
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as running:
        assert send(running, submit).status in (200, 201)
        update = fake.wait_for("update", count=3)[-1]
        assert send(running, submit).status in (200, 201)  # the Bot Framework delivers it again
    assert update.activity_id == spike["message_ts"] and update.conversation.startswith(CHANNEL)
    ((_, card),) = fake.cards("update")[2:]
    assert_valid_card(card)
    assert "actions" not in card and "Not an issue" in json.dumps(card)
    after = stored(engine)["gpt-4o"]
    assert (after["status"], after["feedback"], after["feedback_by"]) == (
        "muted",
        "not_an_issue",
        "teams:aad-bob",
    )
    with engine.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.actor, audit_log.c.detail_json).where(
                audit_log.c.event == "anomaly_feedback"
            )
        ).all()
    assert [(actor, json.loads(detail)["alert_id"]) for actor, detail in audited] == [
        ("teams:aad-bob", spike["id"])
    ]
    assert len(fake.of("update")) == 3

    # Muted: only the GPU shift's card is still refreshed.
    scan()
    assert [call.activity_id for call in fake.of("update")[3:]] == [
        by_key[P5_RESOURCE]["message_ts"]
    ]
    assert len(fake.of("send")) == 2


def test_snooze_from_teams_quiets_the_series_for_a_week(
    fake: FakeBotConnector, engine: Engine, settings: Settings, scan: Any
) -> None:
    scan()
    shift = stored(engine)[P5_RESOURCE]
    submit = feedback_submit(fake, shift["message_ts"], "snooze", shift["id"])
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as running:
        send(running, submit)
        fake.wait_for("update")
    ((_, card),) = fake.cards("update")
    assert "actions" not in card and f"until {NOW + timedelta(days=7):%Y-%m-%d}" in json.dumps(card)
    assert stored(engine)[P5_RESOURCE]["snoozed_until"] == NOW + timedelta(days=7)
    scan()
    assert [call.activity_id for call in fake.of("update")[1:]] == [
        stored(engine)["gpt-4o"]["message_ts"]
    ]


def test_feedback_from_someone_neither_finops_nor_the_owner_is_refused_under_the_card(
    fake: FakeBotConnector, engine: Engine, settings: Settings, scan: Any
) -> None:
    scan()
    spike = stored(engine)["gpt-4o"]
    submit = feedback_submit(fake, spike["message_ts"], "not_an_issue", spike["id"], who="mallory")
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as running:
        send(running, submit)
        (refusal,) = fake.wait_for("reply", "message")
    assert "Only FinOps or the owner" in refusal.body["text"]
    assert refusal.conversation == f"{CHANNEL};messageid={spike['message_ts']}"
    assert fake.of("update") == [] and stored(engine)["gpt-4o"]["status"] == "open"
    with engine.connect() as connection:
        refused = connection.execute(
            select(audit_log.c.actor).where(audit_log.c.event == "refused")
        ).all()
    assert [actor for (actor,) in refused] == ["teams:aad-mallory"]


def test_an_unknown_feedback_changes_nothing(
    fake: FakeBotConnector, engine: Engine, settings: Settings, scan: Any
) -> None:
    scan()
    spike = stored(engine)["gpt-4o"]
    with BotServer(build_server(settings, Assistant(settings, engine, load_skills()))) as running:
        send(running, feedback_submit(fake, spike["message_ts"], "ignore_forever", spike["id"]))
    assert fake.of("update") == [] and stored(engine)["gpt-4o"]["status"] == "open"


def test_a_question_in_an_alert_cards_thread_is_answered_about_that_anomaly(
    fake: FakeBotConnector, engine: Engine, settings: Settings, scan: Any
) -> None:
    scan()
    spike = stored(engine)["gpt-4o"]
    assistant = RecordingAssistant(settings, engine, load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        send(running, mention(fake.url, "why?", thread=spike["message_ts"]))
        (answer,) = fake.wait_for("reply", "message")
    spike_day = json.loads(spike["alert_json"])["alert"]["date"]
    assert spike_day == (END - timedelta(days=9)).isoformat()
    ((question, asker, _),) = assistant.asked
    assert question.startswith("why?\n") and f"anomaly since {spike_day}" in question
    assert asker == "teams:aad-alice"
    assert answer.conversation == f"{CHANNEL};messageid={spike['message_ts']}"
    ((_, card),) = fake.cards("reply")
    assert f"from {spike_day} to {END.isoformat()}" in json.dumps(card) and "gpt-4o" in str(card)


def test_a_question_in_another_thread_is_asked_as_it_is(
    fake: FakeBotConnector, engine: Engine, settings: Settings
) -> None:
    assistant = RecordingAssistant(settings, engine, load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        send(running, mention(fake.url, "why?", thread="1790000000077"))
        fake.wait_for("reply", "message")
    assert [question for question, _, _ in assistant.asked] == ["why?"]
