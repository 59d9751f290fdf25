"""spendbot's Slack endpoint over real HTTP: signed requests in, a fake Slack Web API records out."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import Engine, insert, text

from bot.pipeline import Answer, Assistant
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from skills.money import format_money
from storage.models import slack_events
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_slack import (
    BOT_ID,
    BOT_USER,
    TEAM,
    BotServer,
    FakeSlack,
    FakeSocketMode,
    action_body,
    command_body,
    event_body,
    post,
    signed,
)
from tests.guarded_fakes import FakeCloud, grant, make_registry

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2026, 11, 29, 12, 0)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ACK_LATENCIES: dict[str, list[float]] = {}


demo_file, engine = demo_fixtures("slack")
"""A SQLite store holding 60 days of demo spend ending the day before NOW, a copy per test."""
fake = fake_slack_fixture()


def settings_for(fake: FakeSlack, engine: Engine, **extra: Any) -> Settings:
    return Settings(
        database_url=str(engine.url),
        now=NOW,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        slack_api_url=f"{fake.url}/api/",
        **extra,
    )


@contextmanager
def bot(fake: FakeSlack, engine: Engine, assistant: Assistant | None = None, **extra: Any):
    settings = settings_for(fake, engine, **extra)
    assistant = assistant or Assistant(settings, engine, load_skills())
    with BotServer(build_server(settings, assistant)) as server:
        yield server


def send_event(server: BotServer, event: dict[str, Any], event_id: str, **headers: str):
    body = event_body(event, event_id)
    response = post(
        f"{server.url}/slack/events", body, {**signed(SECRET, body, content_type=JSON), **headers}
    )
    ACK_LATENCIES.setdefault("event", []).append(response.seconds)
    return response


def send_command(server: BotServer, text: str, response_url: str, **kwargs: Any):
    body = command_body(text, response_url, **kwargs)
    response = post(f"{server.url}/slack/events", body, signed(SECRET, body, content_type=FORM))
    ACK_LATENCIES.setdefault("command", []).append(response.seconds)
    return response


def click(server: BotServer, payload: dict[str, Any]):
    body = action_body(payload)
    response = post(f"{server.url}/slack/events", body, signed(SECRET, body, content_type=FORM))
    ACK_LATENCIES.setdefault("click", []).append(response.seconds)
    return response


def mention(text: str, ts: str = "1799999999.000100", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "U100",
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": "C100",
        "event_ts": ts,
        **extra,
    }


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """Every block parses into slack_sdk's models and passes their Block Kit validation."""
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def october_total(engine: Engine) -> float:
    """Independently: effective cost charged in October 2026, by plain SQL."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT sum(effective_cost) FROM cost_line_items "
                "WHERE charge_period_start >= '2026-10-01' AND charge_period_start < '2026-11-01'"
            )
        ).scalar_one()


# The slash command ------------------------------------------------------------------------------


def test_slash_command_answers_ephemerally_with_blocks_and_a_share_button(fake, engine):
    with bot(fake, engine) as server:
        response = send_command(server, "last month by team", f"{fake.url}/response/1")
        assert response.status == 200
        assert "Working on it" in response.json()["text"]
        (answer,) = fake.wait_for("/response/1")
    body = answer.params
    assert body["response_type"] == "ephemeral"
    assert body["replace_original"] is True
    assert_valid_blocks(body["blocks"])
    assert body["blocks"][0]["type"] == "header"
    rendered = all_text(body["blocks"])
    assert format_money(october_total(engine), "USD") in rendered
    for team in ("research", "search", "ml-platform"):
        assert team in rendered
    context = [b for b in body["blocks"] if b["type"] == "context"]
    assert "Metric: EffectiveCost" in context[0]["elements"][0]["text"]
    share = next(b for b in body["blocks"] if b["type"] == "actions")["elements"][0]
    assert share["action_id"] == "spend_share"


def test_share_button_posts_the_answer_in_channel_and_removes_the_ephemeral_one(fake, engine):
    with bot(fake, engine) as server:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": "U100"},
            "channel": {"id": "C100"},
            "container": {"type": "message", "is_ephemeral": True, "channel_id": "C100"},
            "response_url": f"{fake.url}/response/share",
            "trigger_id": "1.2",
            "actions": [
                {
                    "type": "button",
                    "action_id": "spend_share",
                    "block_id": "b",
                    "value": json.dumps({"text": "last month"}),
                    "action_ts": "1",
                }
            ],
        }
        assert click(server, payload).status == 200
        shared, deleted = fake.wait_for("/response/share", 2)
    assert shared.params["response_type"] == "in_channel"
    assert_valid_blocks(shared.params["blocks"])
    assert "Shared by <@U100>" in all_text(shared.params["blocks"])
    assert "spend_share" not in all_text(shared.params["blocks"])
    assert deleted.params["delete_original"] is True


def test_spend_help_lists_the_commands(fake, engine):
    with bot(fake, engine) as server:
        send_command(server, "help", f"{fake.url}/response/h")
        (answer,) = fake.wait_for("/response/h")
    assert_valid_blocks(answer.params["blocks"])
    assert "spend" in all_text(answer.params["blocks"]).lower()


# Mentions and DMs -------------------------------------------------------------------------------


def test_mention_is_answered_in_its_thread_with_a_thinking_placeholder(fake, engine):
    with bot(fake, engine) as server:
        response = send_event(server, mention("spend last month by provider"), "Ev1")
        assert response.status == 200
        (update,) = fake.wait_for("chat.update")
    (placeholder,) = fake.of("chat.postMessage")
    assert placeholder.params["channel"] == "C100"
    assert placeholder.params["thread_ts"] == "1799999999.000100"
    assert "Working on it" in placeholder.params["text"]
    assert update.params["channel"] == "C100"
    assert update.params["ts"].startswith("1800000000.")
    assert_valid_blocks(update.params["blocks"])
    assert format_money(october_total(engine), "USD") in all_text(update.params["blocks"])


def test_a_reply_in_a_thread_stays_in_that_thread(fake, engine):
    with bot(fake, engine) as server:
        send_event(server, mention("help", ts="1799999999.000300", thread_ts="1799999000.1"), "Ev2")
        fake.wait_for("chat.update")
    assert fake.of("chat.postMessage")[0].params["thread_ts"] == "1799999000.1"


def test_direct_message_is_answered(fake, engine):
    dm = {
        "type": "message",
        "channel_type": "im",
        "channel": "D100",
        "user": "U100",
        "text": "what data do you have?",
        "ts": "1799999999.000200",
    }
    with bot(fake, engine) as server:
        send_event(server, dm, "EvDM")
        (update,) = fake.wait_for("chat.update")
    assert update.params["channel"] == "D100"
    assert_valid_blocks(update.params["blocks"])


@pytest.mark.parametrize(
    "event",
    [
        {"bot_id": "BOTHER", "user": "U999"},
        {"bot_id": BOT_ID, "user": BOT_USER},
        {"subtype": "bot_message", "bot_id": "B2"},
        {"subtype": "message_changed"},
        {"channel_type": "channel"},
    ],
)
def test_bots_own_messages_and_other_bots_are_ignored(fake, engine, event):
    dm = {
        "type": "message",
        "channel_type": "im",
        "channel": "D100",
        "user": "U100",
        "text": "help",
        "ts": "1799999999.000200",
        **event,
    }
    with bot(fake, engine) as server:
        assert send_event(server, dm, "EvBot").status == 200
        time.sleep(0.5)
    assert fake.of("chat.") == []


def test_channel_and_workspace_allow_lists(fake, engine):
    with bot(fake, engine, slack_channels="C555", slack_teams=TEAM) as server:
        assert send_event(server, mention("help"), "EvX").status == 200
        response = send_command(server, "help", f"{fake.url}/response/x")
        assert "not enabled" in response.body.decode()
        send_event(server, {**mention("help"), "channel": "C555"}, "EvY")
        dm = {"type": "message", "channel_type": "im", "channel": "D1", "user": "U1", "ts": "1.2"}
        send_event(server, {**dm, "text": "help"}, "EvZ")
        fake.wait_for("chat.update", 2)
        time.sleep(0.3)
    channels = sorted(call.params["channel"] for call in fake.of("chat.postMessage"))
    assert channels == ["C555", "D1"]
    assert fake.of("/response/x") == []


# Retries ----------------------------------------------------------------------------------------


def test_a_retried_event_is_answered_once(fake, engine):
    with bot(fake, engine) as server:
        send_event(server, mention("help"), "EvR")
        send_event(
            server,
            mention("help"),
            "EvR",
            **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        )
        fake.wait_for("chat.update")
        send_event(server, mention("help"), "EvR", **{"X-Slack-Retry-Num": "2"})
        time.sleep(0.5)
    assert len(fake.of("chat.postMessage")) == 1
    assert len(fake.of("chat.update")) == 1


def test_a_retry_whose_original_was_lost_is_answered(fake, engine):
    # Another replica claimed the event three minutes ago and died before answering.
    with engine.begin() as connection:
        connection.execute(
            insert(slack_events).values(
                event_id="EvLost",
                state="claimed",
                claimed_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=3),
                attempts=1,
            )
        )
    with bot(fake, engine) as server:
        send_event(server, mention("help"), "EvLost", **{"X-Slack-Retry-Num": "2"})
        fake.wait_for("chat.update")
    assert len(fake.of("chat.postMessage")) == 1


def test_rate_limited_web_api_calls_are_retried_after_retry_after(fake, engine):
    fake.rate_limit["chat.postMessage"] = 1
    with bot(fake, engine) as server:
        send_event(server, mention("help"), "Ev429")
        fake.wait_for("chat.update")
    assert fake.attempts["chat.postMessage"] == 2
    assert len(fake.of("chat.postMessage")) == 1


# Security ---------------------------------------------------------------------------------------


class CountingAssistant(Assistant):
    """An assistant that counts questions, to prove rejected requests run nothing."""

    asked = 0

    def ask(self, *args: Any, **kwargs: Any) -> Answer:
        type(self).asked += 1
        return super().ask(*args, **kwargs)


@pytest.mark.parametrize("forgery", ["bad signature", "other secret", "stale", "unsigned"])
def test_forged_or_stale_requests_get_401_and_run_nothing(fake, engine, forgery):
    settings = settings_for(fake, engine)
    assistant = CountingAssistant(settings, engine, load_skills())
    CountingAssistant.asked = 0
    body = command_body("last month", f"{fake.url}/response/f")
    if forgery == "bad signature":
        headers = signed(SECRET, body, content_type=FORM)
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif forgery == "other secret":
        headers = signed("not-the-secret", body, content_type=FORM)
    elif forgery == "stale":
        headers = signed(SECRET, body, timestamp=int(time.time()) - 6 * 60, content_type=FORM)
    else:
        headers = {"Content-Type": FORM}
    with bot(fake, engine, assistant) as server:
        assert post(f"{server.url}/slack/events", body, headers).status == 401
        event = event_body(mention("help"), "EvForged")
        stale = signed(SECRET, event, timestamp=int(time.time()) - 301, content_type=JSON)
        assert post(f"{server.url}/slack/events", event, stale).status == 401
        time.sleep(0.3)
    assert CountingAssistant.asked == 0
    assert [call.method for call in fake.calls if call.method != "auth.test"] == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM slack_events")).scalar_one() == 0


def test_text_from_data_or_the_llm_cannot_ping_or_link(fake, engine):
    class Echo(Assistant):
        def ask(self, text: str, user: str, **kwargs: Any) -> Answer:
            from skills.replies import Reply

            return Answer(
                Reply(
                    text="Hey @channel @here <!everyone> <!channel> <@U123> <!subteam^S1|ops> "
                    "see https://evil.example.com/x and http://docs.acme.io/a and phish.com",
                    context="team <@U999>",
                )
            )

    settings = settings_for(fake, engine, link_domains="acme.io")
    with bot(fake, engine, Echo(settings, engine, load_skills()), link_domains="acme.io") as server:
        send_event(server, mention("hi"), "EvSafe")
        (update,) = fake.wait_for("chat.update")
    rendered = all_text(update.params["blocks"]) + update.params["text"]
    for ping in ("@channel", "@here", "<!", "<@", "https://evil", "phish.com"):
        assert ping not in rendered
    assert "<http://docs.acme.io/a>" in rendered
    assert "hxxps://evil[.]example[.]com/x" in rendered


# Acks stay fast ---------------------------------------------------------------------------------


class StalledAssistant(Assistant):
    """Stands in for an LLM that stalls: every question waits until the test releases it."""

    release = threading.Event()

    def ask(self, *args: Any, **kwargs: Any) -> Answer:
        self.release.wait(20)
        return super().ask(*args, **kwargs)


def test_acks_return_fast_while_the_llm_is_stalled(fake, engine):
    settings = settings_for(fake, engine)
    assistant = StalledAssistant(settings, engine, load_skills())
    StalledAssistant.release.clear()
    latencies = []
    with bot(fake, engine, assistant) as server:
        send_event(server, mention("help"), "EvWarm")  # first request: Bolt's auth.test
        for index in range(8):
            acks = (
                send_event(server, mention("help"), f"EvStall{index}"),
                send_command(server, "last month", f"{fake.url}/response/s{index}"),
            )
            # Each ack came back while every answer was still waiting for the stalled LLM.
            assert [ack.status for ack in acks] == [200, 200]
            assert fake.of("chat.update") == [] and fake.of("/response/") == []
            latencies += [ack.seconds for ack in acks]
        StalledAssistant.release.set()
        fake.wait_for("chat.update", 9, timeout=30)
        fake.wait_for("/response/", 8, timeout=30)
    print(
        f"ack latency with a stalled LLM: max {max(latencies) * 1000:.1f} ms, "
        f"mean {sum(latencies) / len(latencies) * 1000:.1f} ms over {len(latencies)} requests"
    )


def test_acks_return_fast_while_the_database_is_locked(fake, engine):
    with bot(fake, engine) as server:
        send_event(server, mention("help"), "EvWarmDb")
        fake.wait_for("chat.update")
        blocker = engine.raw_connection()
        blocker.execute("BEGIN EXCLUSIVE")  # every other SQLite connection now waits
        try:
            acks = [send_event(server, mention("help"), f"EvLocked{i}") for i in range(5)]
            # Every ack came back while the lock was still held, so none waited for the database.
            assert [ack.status for ack in acks] == [200] * 5
            time.sleep(1.0)
            assert len(fake.of("chat.postMessage")) == 1  # nothing could be claimed yet
        finally:
            blocker.rollback()
            blocker.close()
        fake.wait_for("chat.update", 6, timeout=30)
    print(f"ack latency with the database locked: max {max(a.seconds for a in acks) * 1000:.1f} ms")


# Health ---------------------------------------------------------------------------------------


def test_healthz_reports_database_and_migrations(fake, engine):
    with bot(fake, engine) as server:
        import urllib.request

        with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as response:
            body = json.loads(response.read())
    freshness = body.pop("freshness")
    assert body.pop("sources") == {}
    assert body.pop("teams") is False  # no MICROSOFT_APP_ID
    assert body == {"status": "ok", "database": True, "migrations_current": True, "slack": True}
    with engine.connect() as connection:
        providers = connection.execute(text("SELECT DISTINCT provider_name FROM ingest_slices"))
        assert set(freshness) == {row[0] for row in providers}


# Approvals --------------------------------------------------------------------------------------


def approval_click(fake: FakeSlack, action_id: int, user: str, ts: str, verb: str = "approve"):
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": "C100"},
        "container": {"type": "message", "message_ts": ts, "channel_id": "C100"},
        "message": {"ts": ts, "type": "message"},
        "response_url": f"{fake.url}/response/click-{user}",
        "trigger_id": "1.2",
        "actions": [
            {
                "type": "button",
                "action_id": f"action_{verb}",
                "block_id": f"action_{action_id}",
                "value": str(action_id),
                "action_ts": "1",
            }
        ],
    }


def test_approval_buttons_run_the_action_once_after_a_double_click(fake, engine):
    cloud = FakeCloud()
    registry = make_registry(cloud)
    grant(engine, "slack-group:S0FINOPS")  # the approver holds the role through a user group
    fake.usergroups = [{"id": "S0FINOPS", "handle": "finops", "users": ["U200"]}]
    settings = settings_for(fake, engine)
    with bot(fake, engine, Assistant(settings, engine, registry)) as server:
        send_event(server, mention("stop i-1 i-2"), "EvStop")
        (pending,) = fake.wait_for("chat.update")
        blocks = pending.params["blocks"]
        assert_valid_blocks(blocks)
        rendered = all_text(blocks)
        assert "i-1" in rendered and "i-2" in rendered and cloud.stop_calls == []
        buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
        assert [b["action_id"] for b in buttons] == ["action_approve", "action_deny"]
        action_id = int(buttons[0]["value"])
        ts = pending.params["ts"]
        # The requester may not approve their own action: told privately, message unchanged.
        click(server, approval_click(fake, action_id, "U100", ts))
        (refusal,) = fake.wait_for("/response/click-U100")
        assert "someone else" in refusal.params["text"]
        # A double click by the approver: two requests at once.
        threads = [
            threading.Thread(
                target=click, args=(server, approval_click(fake, action_id, "U200", ts))
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        updates = fake.wait_for("chat.update", 2)
        (second,) = fake.wait_for("/response/click-U200")
        time.sleep(0.3)
    assert cloud.stop_calls == [("i-1", "i-2")]
    result = updates[1]
    assert result.params["ts"] == ts and result.params["channel"] == "C100"
    assert_valid_blocks(result.params["blocks"])
    rendered = all_text(result.params["blocks"])
    assert "succeeded" in rendered and "Approved by <@U200>" in rendered
    assert "action_approve" not in rendered
    assert "can no longer be approved" in second.params["text"]
    assert len(fake.of("chat.update")) == 2


def test_deny_button_updates_the_message_and_nothing_runs(fake, engine):
    cloud = FakeCloud()
    grant(engine, "slack:U200")
    settings = settings_for(fake, engine)
    with bot(fake, engine, Assistant(settings, engine, make_registry(cloud))) as server:
        send_event(server, mention("stop i-3"), "EvStop3")
        (pending,) = fake.wait_for("chat.update")
        action_id = int(
            next(b for b in pending.params["blocks"] if b["type"] == "actions")["elements"][1][
                "value"
            ]
        )
        click(server, approval_click(fake, action_id, "U200", pending.params["ts"], "deny"))
        updates = fake.wait_for("chat.update", 2)
    assert cloud.stop_calls == []
    assert "denied" in all_text(updates[1].params["blocks"])
    assert "Denied by <@U200>" in all_text(updates[1].params["blocks"])


# Charts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["daily spend last 14 days", "spend last month by team"])
def test_trends_and_breakdowns_come_with_an_uploaded_chart(fake, engine, question):
    with bot(fake, engine) as server:
        send_event(server, mention(question), "EvChart")
        (complete,) = fake.wait_for("files.completeUploadExternal")
    (upload_url,) = fake.of("files.getUploadURLExternal")
    assert upload_url.params["filename"] == "spendbot-chart.png"
    (upload,) = fake.of("/upload/")
    assert upload.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert int(upload_url.params["length"]) == len(upload.body)
    assert complete.params["channel_id"] == "C100"
    assert complete.params["thread_ts"] == "1799999999.000100"
    (uploaded,) = complete.params["files"]
    assert uploaded["id"] == upload.method.removeprefix("/upload/")


def test_a_plain_answer_has_no_chart(fake, engine):
    with bot(fake, engine) as server:
        send_event(server, mention("help"), "EvNoChart")
        fake.wait_for("chat.update")
        time.sleep(0.5)
    assert fake.of("files.") == []


def test_url_verification_challenge_is_answered(fake, engine):
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"}).encode()
    with bot(fake, engine) as server:
        response = post(f"{server.url}/slack/events", body, signed(SECRET, body, content_type=JSON))
    assert response.status == 200 and response.json() == {"challenge": "c-123"}


# Socket Mode ------------------------------------------------------------------------------------


def test_socket_mode_answers_over_the_websocket_instead_of_http(fake, engine):
    envelope = {
        "envelope_id": "env-1",
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "payload": json.loads(event_body(mention("help"), "EvSocket")),
    }
    socket_mode = FakeSocketMode([envelope])
    with BotServer(socket_mode.app) as socket_server:
        fake.socket_url = socket_server.url.replace("http://", "ws://") + "/link"
        settings = Settings(
            database_url=str(engine.url),
            now=NOW,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_APP_TOKEN="xapp-test",
            slack_api_url=f"{fake.url}/api/",
        )
        with BotServer(
            build_server(settings, Assistant(settings, engine, load_skills()))
        ) as server:
            (update,) = fake.wait_for("chat.update")
            body = event_body(mention("help"), "EvHttp")
            assert post(f"{server.url}/slack/events", body, {"Content-Type": JSON}).status == 404
    assert update.params["channel"] == "C100"
    assert {"envelope_id": "env-1"} in socket_mode.received
    assert len(fake.of("apps.connections.open")) >= 1


def test_a_spend_command_needing_approval_is_posted_in_channel_with_buttons(fake, engine):
    cloud = FakeCloud()
    settings = settings_for(fake, engine)
    with bot(fake, engine, Assistant(settings, engine, make_registry(cloud))) as server:
        send_command(server, "stop i-2", f"{fake.url}/response/stop")
        answer, note = fake.wait_for("/response/stop", 2)
    assert note.params["delete_original"] is True
    assert answer.params["replace_original"] is False
    assert answer.params["response_type"] == "in_channel"
    assert_valid_blocks(answer.params["blocks"])
    rendered = all_text(answer.params["blocks"])
    assert "action_approve" in rendered and "spend_share" not in rendered
    assert cloud.stop_calls == []


def test_an_action_needing_two_approvals_keeps_its_buttons_until_the_second(fake, engine):
    cloud = FakeCloud()
    grant(engine, "slack:U200")
    grant(engine, "slack:U300")
    settings = settings_for(fake, engine)
    registry = make_registry(cloud, approvals=2)
    with bot(fake, engine, Assistant(settings, engine, registry)) as server:
        send_event(server, mention("stop i-1"), "EvTwo")
        (pending,) = fake.wait_for("chat.update")
        ts = pending.params["ts"]
        action_id = int(
            next(b for b in pending.params["blocks"] if b["type"] == "actions")["elements"][0][
                "value"
            ]
        )
        click(server, approval_click(fake, action_id, "U200", ts))
        first = fake.wait_for("chat.update", 2)[1]
        assert cloud.stop_calls == []
        rendered = all_text(first.params["blocks"])
        assert "action_approve" in rendered and "i-1" in rendered
        assert "Approved by <@U200>" in rendered and "(1 of 2 approvals)" in rendered
        assert_valid_blocks(first.params["blocks"])
        click(server, approval_click(fake, action_id, "U300", ts))
        second = fake.wait_for("chat.update", 3)[2]
    assert cloud.stop_calls == [("i-1",)]
    assert "succeeded" in all_text(second.params["blocks"])
    assert "action_approve" not in all_text(second.params["blocks"])


def test_zz_report_ack_latencies():
    """Prints the ack latencies measured across this module (run with -s to see them)."""
    for kind, values in sorted(ACK_LATENCIES.items()):
        ordered = sorted(values)
        p50 = ordered[len(ordered) // 2]
        print(f"{kind}: n={len(values)} p50={p50 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms")
