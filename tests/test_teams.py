"""spendbot's Teams endpoint over real HTTP: Activity JSON in, a fake Bot Connector records out."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Answer, Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from bot.teams_app import PATH, is_loopback
from bot.teams_proactive import TeamsPoster
from skills.catalog import load_skills
from skills.money import format_money
from storage import schedules, teams_refs
from storage.models import Base
from tests.demo_store import demo_fixtures
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
from tests.fake_slack import BotServer, post
from tests.guarded_fakes import FakeCloud, grant, make_registry
from tests.test_teams_render import assert_valid_card

NOW = datetime(2026, 11, 29, 12, 0)
JSON = {"Content-Type": "application/json"}


class RecordingAssistant(Assistant):
    """The real Assistant, noting what each question was and who asked it, where."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: list[tuple[str, str, str | None]] = []

    def ask(self, text: str, user: str, **kwargs: Any) -> Answer:
        self.asked.append((text, user, kwargs.get("conversation")))
        return super().ask(text, user, **kwargs)


demo_file, engine = demo_fixtures("teams", days=45)


@pytest.fixture
def fake() -> Iterator[FakeBotConnector]:
    with FakeBotConnector() as fake:
        yield fake


def settings_for(engine: Engine, **extra: Any) -> Settings:
    return Settings(database_url=str(engine.url), now=NOW, **extra)


@contextmanager
def server(engine: Engine, registry: Any = None, **extra: Any) -> Iterator[Any]:
    settings = settings_for(engine, **extra)
    assistant = RecordingAssistant(settings, engine, registry or load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        running.assistant = assistant
        yield running


def send(running: Any, body: dict[str, Any], **headers: str):
    return post(f"{running.url}{PATH}", json.dumps(body).encode(), {**JSON, **headers})


def october_total(engine: Engine) -> float:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT sum(effective_cost) FROM cost_line_items "
                "WHERE charge_period_start >= '2026-10-01' AND charge_period_start < '2026-11-01'"
            )
        ).scalar_one()


def stored_conversations(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text("SELECT conversation_id, kind, name, tenant_id FROM teams_conversations")
            )
        ]


# Conversations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["personal", "groupChat"])
def test_a_chat_message_gets_typing_then_a_card_in_the_same_conversation(fake, engine, scope):
    conversation = {"id": f"19:{scope}-chat@unq.gbl.spaces", "conversationType": scope}
    if scope == "personal":
        conversation = {"id": "a:personal-alice", "conversationType": "personal"}
    body = activity(
        fake.url, text="what did we spend last month?", conversation=conversation, id="m-1"
    )
    with server(engine) as running:
        response = send(running, body)
        (answer,) = fake.wait_for("reply", "message")
    assert response.status in (200, 201)
    typing = fake.of(kind="typing")
    assert typing and fake.calls.index(typing[0]) < fake.calls.index(answer)
    assert answer.conversation == conversation["id"] and answer.activity_id == "m-1"
    assert answer.body["replyToId"] == "m-1" and answer.body["from"]["id"] == BOT_ID
    ((_, card),) = fake.cards()
    assert_valid_card(card)
    assert format_money(october_total(engine)) in json.dumps(card)
    assert running.assistant.asked == [
        ("what did we spend last month?", "teams:aad-alice", f"teams:{conversation['id']}")
    ]


class StalledAssistant(RecordingAssistant):
    """An Assistant whose answers wait until the test lets them go."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.go = threading.Event()

    def ask(self, text: str, user: str, **kwargs: Any) -> Answer:
        assert self.go.wait(30)
        return super().ask(text, user, **kwargs)


def test_teams_gets_its_response_while_the_answer_is_computed_with_typing_repeated(fake, engine):
    settings = settings_for(engine)
    assistant = StalledAssistant(settings, engine, load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        try:
            response = send(running, activity(fake.url, text="help", id="m-4"))
            assert response.status in (200, 201)  # answered while the Assistant is stalled
            fake.wait_for("reply", "typing", count=2)
            assert fake.of(kind="message") == []
        finally:
            assistant.go.set()
        fake.wait_for("reply", "message")
    assert all(call.activity_id == "m-4" for call in fake.calls)


def test_a_channel_mention_is_stripped_and_answered_in_its_thread(fake, engine):
    body = mention(fake.url, "spend last month by team", thread="1790000000001", id="m-2")
    with server(engine) as running:
        send(running, body)
        fake.wait_for("reply", "message")
    ((call, card),) = fake.cards()
    assert call.conversation == f"{CHANNEL};messageid=1790000000001"
    assert_valid_card(card)
    assert [element["type"] for element in card["body"]].count("Table") == 1
    assert any(element["type"] == "Image" for element in card["body"])
    ((question, asker, _),) = running.assistant.asked
    assert (question, asker) == ("spend last month by team", "teams:aad-alice")
    # The channel is remembered without the thread, under its name, for proactive posts.
    assert stored_conversations(engine) == [(CHANNEL, "channel", "finops", TENANT)]


def test_install_is_remembered_and_a_proactive_digest_reaches_the_channel(fake, engine):
    install = activity(
        fake.url,
        kind="conversationUpdate",
        conversation=channel_conversation(),
        channelData={**channel_data(), "eventType": "teamMemberAdded"},
        membersAdded=[{"id": BOT_ID}],
    )
    with server(engine) as running:
        assert send(running, install).status in (200, 201)
        (welcome,) = fake.wait_for("send", "message")
    assert welcome.conversation == CHANNEL and "spendbot" in welcome.body["text"]
    assert stored_conversations(engine) == [(CHANNEL, "channel", "finops", TENANT)]
    settings = settings_for(engine)
    digest = Assistant(settings, engine, load_skills()).ask("weekly digest", "scheduler").reply
    posted = TeamsPoster(settings, engine).post("finops", digest)
    sends = fake.of("send", "message")
    assert len(sends) == 2 and sends[1].conversation == CHANNEL
    assert "replyToId" not in sends[1].body or sends[1].body["replyToId"] is None
    ((_, card),) = fake.cards("send")
    assert_valid_card(card)
    assert card["body"][0]["text"].startswith("Digest") and posted == f"{CHANNEL}:{sends[1].id}"
    with pytest.raises(LookupError):
        TeamsPoster(settings, engine).post("no-such-channel", digest)


def test_teams_post_command_posts_an_answer_into_a_known_channel(fake, engine, monkeypatch):
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
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("SPENDBOT_NOW", NOW.isoformat())
    runner = CliRunner()
    result = runner.invoke(app, ["teams-post", "finops", "what did we spend last month?"])
    assert result.exit_code == 0, result.output
    ((call, card),) = fake.cards("send")
    assert call.conversation == CHANNEL and call.id in result.output
    assert format_money(october_total(engine)) in json.dumps(card)
    missing = runner.invoke(app, ["teams-post", "nowhere", "help"])
    assert missing.exit_code == 1 and len(fake.calls) == 1


def test_removing_the_bot_forgets_the_conversation(fake, engine):
    first = mention(fake.url, "help")
    removed = activity(
        fake.url,
        kind="conversationUpdate",
        conversation=channel_conversation(),
        channelData=channel_data(),
        membersRemoved=[{"id": BOT_ID}],
    )
    with server(engine) as running:
        send(running, first)
        fake.wait_for("reply", "message")
        assert len(stored_conversations(engine)) == 1
        assert send(running, removed).status in (200, 201)
    assert stored_conversations(engine) == []


def test_a_throttled_reply_is_retried_and_arrives_exactly_once(fake, engine):
    fake.throttle = 2  # the typing indicator and the answer each meet one 429 at worst
    with server(engine) as running:
        send(running, activity(fake.url, text="help", id="m-3"))
        fake.wait_for("reply", "message")
    assert len(fake.of("reply", "message")) == 1
    assert fake.attempts == len(fake.calls) + 2


def test_a_card_teams_refuses_still_arrives_as_text(fake, engine):
    fake.reject_cards = True
    with server(engine) as running:
        send(running, activity(fake.url, text="what did we spend last month?", id="m-5"))
        (answer,) = fake.wait_for("reply", "message")
    assert not answer.body.get("attachments") and answer.activity_id == "m-5"
    assert format_money(october_total(engine)) in answer.body["text"]


# Approvals --------------------------------------------------------------------------------------


def submit(fake: FakeBotConnector, card_id: str, verb: str, action_id: int, who: dict) -> dict:
    return activity(
        fake.url,
        conversation=channel_conversation("1790000000009"),
        channelData=channel_data(),
        sender=who,
        value={"verb": verb, "action_id": action_id},
        replyToId=card_id,
    )


def pending_card(fake: FakeBotConnector, running: Any) -> tuple[str, int]:
    """Ask for a guarded stop in a channel thread; the posted card's id and its action's."""
    send(running, mention(fake.url, "stop i-1 i-2", thread="1790000000009"))
    fake.wait_for("reply", "message")
    ((call, card),) = fake.cards()
    assert_valid_card(card)
    return call.id, int(card["actions"][0]["data"]["action_id"])


def test_approval_runs_once_after_a_double_submit_and_updates_the_card(fake, engine):
    cloud = FakeCloud()
    grant(engine, "teams:aad-bob")
    bob = user("aad-bob", "Bob")
    with server(engine, make_registry(cloud)) as running:
        card_id, action_id = pending_card(fake, running)
        assert cloud.stop_calls == []
        # The requester may not approve their own action: told in the thread, card unchanged.
        send(running, submit(fake, card_id, "approve", action_id, user()))
        (refusal,) = fake.wait_for("reply", "message", count=2)[1:]
        assert "someone else" in refusal.body["text"]
        threads = [
            threading.Thread(
                target=send, args=(running, submit(fake, card_id, "approve", action_id, bob))
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        (update,) = fake.wait_for("update")
        second = fake.wait_for("reply", "message", count=3)[2]
    assert cloud.stop_calls == [("i-1", "i-2")]
    assert update.activity_id == card_id
    ((_, card),) = fake.cards("update")
    assert_valid_card(card)
    rendered = json.dumps(card)
    assert "succeeded" in rendered and "Approved by Bob" in rendered and "actions" not in card
    assert "can no longer be approved" in second.body["text"]
    assert len(fake.of("update")) == 1


def test_an_action_needing_two_approvals_keeps_its_buttons_until_the_second(fake, engine):
    cloud = FakeCloud()
    grant(engine, "teams:aad-bob")
    grant(engine, "teams:aad-carol")
    with server(engine, make_registry(cloud, approvals=2)) as running:
        card_id, action_id = pending_card(fake, running)
        send(running, submit(fake, card_id, "approve", action_id, user("aad-bob", "Bob")))
        fake.wait_for("update")
        assert cloud.stop_calls == []
        ((_, first),) = fake.cards("update")
        assert_valid_card(first)
        assert [action["data"] for action in first["actions"]] == [
            {"verb": "approve", "action_id": action_id},
            {"verb": "deny", "action_id": action_id},
        ]
        assert "Approved by Bob" in json.dumps(first) and "(1 of 2 approvals)" in json.dumps(first)
        send(running, submit(fake, card_id, "approve", action_id, user("aad-carol", "Carol")))
        fake.wait_for("update", count=2)
    assert cloud.stop_calls == [("i-1", "i-2")]
    second = fake.cards("update")[1][1]
    assert "actions" not in second and "Approved by Carol" in json.dumps(second)


def test_deny_updates_the_card_and_nothing_runs(fake, engine):
    cloud = FakeCloud()
    grant(engine, "teams:aad-bob")
    with server(engine, make_registry(cloud)) as running:
        card_id, action_id = pending_card(fake, running)
        send(running, submit(fake, card_id, "deny", action_id, user("aad-bob", "Bob")))
        (update,) = fake.wait_for("update")
    assert cloud.stop_calls == []
    ((_, card),) = fake.cards("update")
    assert "denied" in json.dumps(card) and "Denied by Bob" in json.dumps(card)
    assert update.activity_id == card_id


# Authentication ---------------------------------------------------------------------------------


def test_with_app_credentials_an_unauthenticated_request_is_rejected(fake, engine):
    credentials = {
        "MICROSOFT_APP_ID": "8f0f6a1e-4d1c-4a7e-9a57-1e0b2b7c1d11",
        "MICROSOFT_APP_PASSWORD": "not-a-real-secret",
    }
    with server(engine, **credentials) as running:
        response = send(running, activity(fake.url, text="help"))
    assert response.status == 401
    assert fake.calls == [] and running.assistant.asked == []


def test_without_credentials_only_loopback_callers_are_served(engine):
    settings = settings_for(engine)
    web_app = build_server(settings, Assistant(settings, engine, load_skills()))
    (route,) = [r for r in web_app.router.routes() if r.resource and r.resource.canonical == PATH]
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        ("10.1.2.3", 50000) if key == "peername" else default
    )
    request = make_mocked_request("POST", PATH, headers=JSON, transport=transport, app=web_app)
    response = asyncio.run(route.handler(request))
    assert isinstance(response, web.Response) and response.status == 403
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.1.2.3") and not is_loopback(None)


def test_the_migration_matches_the_model(engine):
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [diff for diff in diffs if "teams_conversations" in repr(diff)] == []


def test_a_scheduled_digest_for_a_teams_channel_reaches_it(fake, engine):
    """A digest job whose target is ``teams:<channel name>`` posts through the stored reference."""
    install = activity(
        fake.url,
        kind="conversationUpdate",
        conversation=channel_conversation(),
        channelData={**channel_data(), "eventType": "teamMemberAdded"},
        membersAdded=[{"id": BOT_ID}],
    )
    with server(engine) as running:
        assert send(running, install).status in (200, 201)
        fake.wait_for("send", "message")
    settings = settings_for(engine)
    schedules.add(
        engine, "digest:teams", kind="digest", target="teams:finops", args={},
        trigger=CronTrigger(day_of_week="mon", hour=9, timezone=UTC), when="weekly", now=NOW,
    )  # fmt: skip
    runtime = JobRuntime(Assistant(settings, engine, load_skills()), notifier(settings, engine))
    event = Scheduler(runtime, replica="only").fire("digest:teams", datetime.now(UTC))
    assert event is not None and event.exception is None
    ((call, card),) = fake.cards("send")
    assert call.conversation == CHANNEL
    assert_valid_card(card)
    # The digest's total is last week's effective cost (Mon 16 – Sun 22 Nov), summed here in SQL.
    with engine.connect() as connection:
        week = connection.execute(
            text(
                "SELECT sum(effective_cost) FROM cost_line_items "
                "WHERE charge_period_start >= '2026-11-16' AND charge_period_start < '2026-11-23'"
            )
        ).scalar_one()
    assert format_money(week, "USD") in json.dumps(card)
