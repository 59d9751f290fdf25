"""Anomaly alerts in a channel: one per planted root cause, updated in place, muted by feedback."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from slack_sdk.models.blocks import Block
from sqlalchemy import Engine, select

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from skills.replies import Reply
from storage import schedules
from storage.demo import generate_demo_focus
from storage.models import anomaly_alerts, audit_log
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_slack import (
    TEAM,
    BotServer,
    Call,
    FakeSlack,
    action_body,
    event_body,
    post,
    signed,
)
from tests.guarded_fakes import grant

END = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 12)
SECRET = "alerts-secret"
CHANNEL = "C0ALERTS"
JOB = f"anomaly_scan:slack:{CHANNEL}"
FINOPS_USER = "U7"
"""Holds the finops role, so may give feedback on any alert."""
FRAME = generate_demo_focus(END, days=120)
P5_RESOURCE = FRAME[FRAME["ChargeDescription"].fillna("").str.contains("p5.48xlarge", regex=False)][
    "ResourceId"
].iloc[0]
"""The demo data plants two root causes: a level shift on this GPU instance, a gpt-4o spike."""


demo_file, engine = demo_fixtures("alerts", FRAME)
fake = fake_slack_fixture()


def assistant_for(fake: FakeSlack, engine: Engine, **extra: object) -> Assistant:
    settings = Settings(
        database_url=str(engine.url),
        now=NOW,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=f"{fake.url}/api/",
        **extra,
    )
    grant(engine, f"slack:{FINOPS_USER}")
    return Assistant(settings, engine, load_skills())


def alert_scheduler(assistant: Assistant) -> Scheduler:
    """A scheduler holding the daily anomaly scan of CHANNEL."""
    scheduler = Scheduler(JobRuntime(assistant, notifier(assistant.settings)), replica="r1")
    schedules.add(
        assistant.engine, JOB, kind="anomaly_scan", target=f"slack:{CHANNEL}", args={},
        trigger=schedules_trigger(), when="daily at 08:00 UTC", now=NOW,
    )  # fmt: skip
    return scheduler


def scan(scheduler: Scheduler) -> None:
    """One fire of the daily scan, as `spendbot schedules run-now` does (the data clock is NOW)."""
    event = scheduler.fire(JOB, datetime.now(UTC))
    assert event is not None and event.exception is None, event and event.exception


def headline_posts(fake: FakeSlack) -> list:
    return [call for call in fake.of("chat.postMessage") if not call.params.get("thread_ts")]


def buttons(blocks: list[dict]) -> list[str]:
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def click(
    server: BotServer,
    feedback: str,
    alert_id: int,
    ts: str,
    user: str = FINOPS_USER,
    response_url: str = "",
) -> None:
    payload = {
        "response_url": response_url,
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL},
        "message": {"ts": ts, "type": "message"},
        "trigger_id": "1.2",
        "actions": [
            {
                "type": "button",
                "action_id": f"alert_feedback:{feedback}",
                "block_id": f"alert_{alert_id}",
                "value": str(alert_id),
                "action_ts": "1",
            }
        ],
    }
    body = action_body(payload)
    response = post(
        f"{server.url}/slack/events",
        body,
        signed(SECRET, body, content_type="application/x-www-form-urlencoded"),
    )
    assert response.status == 200


def ask_in_thread(server: BotServer, fake: FakeSlack, thread: str, question: str) -> Call:
    """Mention the bot with `question` in an alert's thread; its answer (the placeholder, updated)."""
    updates = len(fake.of("chat.update"))
    event = {
        "type": "app_mention",
        "user": "U9",
        "text": f"<@UBOT> {question}",
        "ts": f"1800000100.{updates + 1:06d}",
        "thread_ts": thread,
        "channel": CHANNEL,
    }
    body = event_body(event, f"EvThread{updates}")
    response = post(
        f"{server.url}/slack/events", body, signed(SECRET, body, content_type="application/json")
    )
    assert response.status == 200
    return fake.wait_for("chat.update", updates + 1)[-1]


def list_anomalies(assistant: Assistant) -> Reply:
    """`anomaly_list` with its defaults (the last 30 days), as a person asking would get it."""
    skill = assistant.registry.get("anomaly_list")
    assert skill is not None
    return assistant.execute(skill, {}, "U1")


def stored(engine: Engine) -> dict[str, dict]:
    with engine.connect() as connection:
        rows = connection.execute(select(anomaly_alerts)).mappings().all()
    return {json.loads(row["alert_json"])["alert"]["key"]: dict(row) for row in rows}


def test_one_alert_per_root_cause_updated_in_place_and_muted_by_feedback(
    fake: FakeSlack, engine: Engine
) -> None:
    assistant = assistant_for(fake, engine)
    scheduler = alert_scheduler(assistant)

    scan(scheduler)
    posts = headline_posts(fake)
    assert len(posts) == 2
    by_key = stored(engine)
    assert set(by_key) == {P5_RESOURCE, "gpt-4o"}
    texts = " ".join(call.params["text"] for call in posts)
    assert f"Resource {P5_RESOURCE}" in texts and "SKU gpt-4o" in texts
    for call in posts:
        assert buttons(call.params["blocks"]) == [
            "alert_feedback:expected",
            "alert_feedback:planned",
            "alert_feedback:not_an_issue",
            "alert_feedback:snooze",
        ]
        for block in call.params["blocks"]:
            Block.parse(block).validate_json()
    # Details go in each alert's thread.
    threads = [call for call in fake.of("chat.postMessage") if call.params.get("thread_ts")]
    assert sorted(call.params["thread_ts"] for call in threads) == sorted(
        row["message_ts"] for row in by_key.values()
    )

    # A day later the same anomalies persist: their messages are updated, nothing is posted.
    scan(scheduler)
    assert len(headline_posts(fake)) == 2
    updates = fake.of("chat.update")
    assert sorted(call.params["ts"] for call in updates) == sorted(
        row["message_ts"] for row in by_key.values()
    )

    spike = by_key["gpt-4o"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        click(server, "not_an_issue", spike["id"], spike["message_ts"])
        updated = fake.wait_for("chat.update", 3)[-1]
    assert updated.params["ts"] == spike["message_ts"]
    assert buttons(updated.params["blocks"]) == []
    assert "Not an issue" in json.dumps(updated.params["blocks"])
    after = stored(engine)["gpt-4o"]
    assert (after["status"], after["feedback"], after["feedback_by"]) == (
        "muted",
        "not_an_issue",
        "slack:U7",
    )
    with engine.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.actor, audit_log.c.detail_json).where(
                audit_log.c.event == "anomaly_feedback"
            )
        ).all()
    assert [(actor, json.loads(detail)["alert_id"]) for actor, detail in audited] == [
        ("slack:U7", spike["id"])
    ]

    # Muted: the spike's message is left alone; the shift is still updated.
    scan(scheduler)
    latest = fake.of("chat.update")[3:]
    assert [call.params["ts"] for call in latest] == [by_key[P5_RESOURCE]["message_ts"]]
    assert len(headline_posts(fake)) == 2


def test_snoozed_series_stay_quiet_for_a_week(fake: FakeSlack, engine: Engine) -> None:
    assistant = assistant_for(fake, engine)
    scheduler = alert_scheduler(assistant)
    scan(scheduler)
    shift = stored(engine)[P5_RESOURCE]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        click(server, "snooze", shift["id"], shift["message_ts"])
        fake.wait_for("chat.update")
    assert stored(engine)[P5_RESOURCE]["snoozed_until"] == NOW + timedelta(days=7)
    scan(scheduler)
    assert [call.params["ts"] for call in fake.of("chat.update")[1:]] == [
        stored(engine)["gpt-4o"]["message_ts"]
    ]


def test_a_question_in_an_alert_thread_is_answered_about_that_anomaly(
    fake: FakeSlack, engine: Engine
) -> None:
    assistant = assistant_for(fake, engine)
    scheduler = alert_scheduler(assistant)
    scan(scheduler)
    spike = stored(engine)["gpt-4o"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        answer = ask_in_thread(server, fake, spike["message_ts"], "why?")
    # Offline, the question plus the alert's context routes to the anomaly skill, over the days
    # since the anomaly began; the spike is in its table.
    spike_day = json.loads(spike["alert_json"])["alert"]["date"]
    assert spike_day == (END - timedelta(days=9)).isoformat()
    assert f"from {spike_day} to {END.isoformat()}" in answer.params["text"]
    assert "gpt-4o" in json.dumps(answer.params["blocks"])


def schedules_trigger():
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(hour=8, minute=0, timezone="UTC")


def test_top_resources_in_an_alert_thread_are_the_series_spend_by_resource(
    fake: FakeSlack, engine: Engine
) -> None:
    assistant = assistant_for(fake, engine)
    scan(alert_scheduler(assistant))
    spike = stored(engine)["gpt-4o"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        answer = ask_in_thread(server, fake, spike["message_ts"], "show the top resources")
    # The spike's series (OpenAI, OpenAI API, SKU gpt-4o) on its one day, by resource.
    rows = FRAME[
        (FRAME["ProviderName"] == "OpenAI")
        & (FRAME["ServiceName"] == "OpenAI API")
        & (FRAME["SkuId"] == "gpt-4o")
        & (pd.to_datetime(FRAME["ChargePeriodStart"]).dt.date == END - timedelta(days=9))
    ]
    total = rows["EffectiveCost"].sum()
    assert total > 0
    assert f"${total:,.2f}" in answer.params["text"]
    assert "Resource" in json.dumps(answer.params["blocks"])


def test_who_owns_a_sku_spike_answers_spend_by_owner_over_its_days(
    fake: FakeSlack, engine: Engine
) -> None:
    assistant = assistant_for(fake, engine)
    scan(alert_scheduler(assistant))
    spike = stored(engine)["gpt-4o"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        answer = ask_in_thread(server, fake, spike["message_ts"], "who owns this?")
    # The spike's day of gpt-4o spend is all tagged team=search in the demo data.
    rows = FRAME[
        (FRAME["SkuId"] == "gpt-4o")
        & (pd.to_datetime(FRAME["ChargePeriodStart"]).dt.date == END - timedelta(days=9))
    ]
    assert set(rows["Tags"].map(lambda tags: json.loads(tags)["team"])) == {"search"}
    blocks = json.dumps(answer.params["blocks"])
    assert "Owner" in blocks and "search" in blocks
    assert f"${rows['EffectiveCost'].sum():,.2f}" in answer.params["text"]
