"""Teams activities delivered again are answered once, on one replica or two; /healthz on Teams."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text

from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database
from storage.models import slack_events
from tests.fake_bot_connector import BOT_ID, FakeBotConnector, activity, mention
from tests.fake_slack import BotServer
from tests.test_teams import RecordingAssistant, send, server, settings_for


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'spendbot.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def fake() -> Iterator[FakeBotConnector]:
    with FakeBotConnector() as fake:
        yield fake


def claims(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text("SELECT event_id, state, attempts FROM slack_events ORDER BY event_id")
            )
        ]


def key(body: dict) -> str:
    """The claim's key: the conversation and activity ids, digested."""
    ids = f"{body['conversation']['id']}\n{body['id']}"
    return "teams:" + hashlib.sha256(ids.encode()).hexdigest()


def test_a_redelivered_message_is_answered_once(fake: FakeBotConnector, engine: Engine) -> None:
    body = mention(fake.url, "help", thread="1790000000001", id="r-1")
    with server(engine) as running:
        assert send(running, body).status in (200, 201)
        fake.wait_for("reply", "message")
        typing = len(fake.of(kind="typing"))
        assert send(running, body).status in (200, 201)
        # Handled before the response: a claimed delivery would have shown typing by now.
        assert len(fake.of(kind="typing")) == typing
    assert len(fake.of("reply", "message")) == 1
    assert [question for question, _, _ in running.assistant.asked] == ["help"]
    assert claims(engine) == [(key(body), "done", 1)]


def test_the_same_activity_at_two_replicas_at_once_is_answered_once(
    fake: FakeBotConnector, engine: Engine
) -> None:
    body = activity(fake.url, text="help", id="r-2")
    settings = settings_for(engine)
    assistants = [RecordingAssistant(settings, engine, load_skills()) for _ in range(2)]
    with (
        BotServer(build_server(settings, assistants[0])) as first,
        BotServer(build_server(settings, assistants[1])) as second,
    ):
        threads = [threading.Thread(target=send, args=(r, body)) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Both servers drained their answers on the way out.
    assert len(fake.of("reply", "message")) == 1
    assert sum(len(assistant.asked) for assistant in assistants) == 1
    assert claims(engine) == [(key(body), "done", 1)]


def test_a_delivery_claimed_by_a_replica_that_died_is_answered_by_the_retry(
    fake: FakeBotConnector, engine: Engine
) -> None:
    body = activity(fake.url, text="help", id="r-3")
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    with engine.begin() as connection:
        connection.execute(
            insert(slack_events).values(
                event_id=key(body), state="claimed", claimed_at=long_ago, attempts=1
            )
        )
    with server(engine) as running:
        send(running, body)
        fake.wait_for("reply", "message")
    assert claims(engine) == [(key(body), "done", 2)]


def test_an_install_delivered_twice_is_welcomed_once(
    fake: FakeBotConnector, engine: Engine
) -> None:
    install = activity(
        fake.url,
        kind="conversationUpdate",
        conversation={"id": "19:group@unq.gbl.spaces", "conversationType": "groupChat"},
        membersAdded=[{"id": BOT_ID}],
        id="r-4",
    )
    with server(engine) as running:
        send(running, install)
        send(running, install)
    assert len(fake.of("send", "message")) == 1
    assert claims(engine) == [(key(install), "done", 1)]


def health(settings: Settings, engine: Engine) -> dict:
    assistant = RecordingAssistant(settings, engine, load_skills())
    with (
        BotServer(build_server(settings, assistant)) as running,
        urllib.request.urlopen(f"{running.url}/healthz", timeout=10) as response,
    ):
        return json.loads(response.read())


def test_healthz_says_whether_teams_is_configured(engine: Engine) -> None:
    assert health(settings_for(engine), engine)["teams"] is False
    configured = settings_for(
        engine,
        MICROSOFT_APP_ID="8f0f6a1e-4d1c-4a7e-9a57-1e0b2b7c1d11",
        MICROSOFT_APP_PASSWORD="not-a-real-secret",
    )
    body = health(configured, engine)
    assert (body["status"], body["teams"], body["slack"]) == ("ok", True, False)
