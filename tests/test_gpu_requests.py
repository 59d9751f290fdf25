"""Scheduled idle-GPU scans: one pending stop request, posted to owners, never duplicated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from slack_sdk.models.blocks import Block
from sqlalchemy import Engine

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage import schedules
from storage.actions import list_actions
from storage.gpu_savings import active_snooze
from tests.fake_slack import BotServer, FakeSlack, click_button
from tests.guarded_fakes import grant
from tests.test_gpu_fleet import (  # noqa: F401
    A_HOURLY,
    NOW,
    REGION,
    aws,
    make_fleet,
    moto_url,
    quiet,
    stop_calls,
    utilization,
)

JOB = "gpu_idle_scan:slack:#gpu-alerts"
SECRET = "gpu-secret"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def slack_assistant(engine: Engine, fake: FakeSlack, now: datetime = NOW, **extra) -> Assistant:
    settings = Settings(
        database_url=str(engine.url),
        now=now,
        gpu_aws_regions=(REGION,),
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=f"{fake.url}/api/",
        **extra,
    )
    return Assistant(settings, engine, load_skills())


def scheduled_scan(
    engine: Engine, fake: FakeSlack, now: datetime = NOW, **extra: object
) -> Scheduler:
    """The daily scan job, run by a scheduler whose clock says `now`."""
    schedules.add(
        engine, JOB, kind="gpu_idle_scan", target="slack:#gpu-alerts", args={},
        trigger=CronTrigger(hour=18, minute=0, timezone=UTC), when="daily", now=NOW,
    )  # fmt: skip
    bot = slack_assistant(engine, fake, now, **extra)
    return Scheduler(JobRuntime(bot, notifier(bot.settings)), replica="only")


def headlines(fake: FakeSlack) -> list:
    return [call for call in fake.of("chat.postMessage") if not call.params.get("thread_ts")]


def buttons(blocks: list[dict], action_id: str) -> list[dict]:
    """The button elements with this action id, in order."""
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    ]


def test_the_phrase_schedules_a_daily_idle_gpu_scan(sqlite_engine: Engine, fake: FakeSlack) -> None:
    grant(sqlite_engine, "terminal:fin")
    bot = slack_assistant(sqlite_engine, fake)
    reply = bot.ask("scan for idle GPUs every day at 18:00 to #gpu-alerts", "terminal:fin").reply
    assert not reply.is_error, reply.text
    [stored] = schedules.list_schedules(sqlite_engine)
    assert (stored.id, stored.kind, stored.target) == (JOB, "gpu_idle_scan", "slack:#gpu-alerts")
    assert stored.when == "daily at 18:00 UTC"


def test_a_scan_posts_one_pending_stop_to_owners_and_none_while_it_is_open(
    aws: str,  # noqa: F811
    sqlite_engine: Engine,
    fake: FakeSlack,
) -> None:
    # idle: billed to search, whose contact is #search; listed: research, with no contact.
    ids = make_fleet(sqlite_engine, ("idle", "kept", "busy", "listed"))
    scheduler = scheduled_scan(sqlite_engine, fake)
    first = scheduler.fire(JOB, datetime.now(UTC))
    assert first is not None and first.exception is None, first

    [action] = list_actions(sqlite_engine)
    assert action.skill == "gpu_stop" and action.state == "pending"
    assert action.requested_by == "scheduler"
    assert {target["id"] for target in action.targets} == {ids["idle"], ids["listed"]}
    posts = headlines(fake)
    assert sorted(call.params["channel"] for call in posts) == ["#gpu-alerts", "#search"]
    for call in posts:
        [approve] = buttons(call.params["blocks"], "action_approve")
        assert approve["value"] == str(action.id)
        assert f"Action #{action.id}" in call.params["text"]

    again = scheduler.fire(JOB, datetime.now(UTC) + timedelta(seconds=1))
    assert again is not None and again.retval.endswith("no newly idle GPU machines")
    assert len(list_actions(sqlite_engine)) == 1 and len(headlines(fake)) == 2

    # Once the request is decided, the still idle machines are proposed again.
    grant(sqlite_engine, "terminal:fin")
    bot = slack_assistant(sqlite_engine, fake)
    assert not bot.deny(action.id, "terminal:fin", "not now").is_error
    third = scheduler.fire(JOB, datetime.now(UTC) + timedelta(seconds=2))
    assert third is not None and third.exception is None, third
    newest = list_actions(sqlite_engine)[0]
    assert newest.id != action.id and newest.state == "pending"
    assert {target["id"] for target in newest.targets} == {ids["idle"], ids["listed"]}
    assert len(headlines(fake)) == 4


def test_keep_buttons_snooze_a_machine_as_the_clicker_and_the_stop_skips_it(
    aws: str,  # noqa: F811
    sqlite_engine: Engine,
    fake: FakeSlack,
) -> None:
    ids = make_fleet(sqlite_engine, ("idle", "listed"))
    scheduler = scheduled_scan(sqlite_engine, fake)
    assert scheduler.fire(JOB, datetime.now(UTC)).exception is None
    [action] = list_actions(sqlite_engine)
    [request] = [call for call in headlines(fake) if call.params["channel"] == "#gpu-alerts"]
    blocks = request.params["blocks"]
    for block in blocks:
        Block.parse(block).validate_json()
    order = [target["id"] for target in action.targets]
    week = buttons(blocks, "gpu_keep:168")  # one per machine, in the request's order
    assert [json.loads(button["value"]) for button in week] == [
        {"action": action.id, "machine": machine} for machine in order
    ]
    assert len(buttons(blocks, "gpu_keep:24")) == 2
    keep_listed = week[order.index(ids["listed"])]
    ts = "1800000000.000001"

    bot = slack_assistant(sqlite_engine, fake)
    grant(sqlite_engine, "slack:U8", team="research")
    with BotServer(build_server(bot.settings, bot)) as server:
        url = f"{server.url}/slack/events"
        # U7 holds no role: refused, told privately, nothing kept.
        answer = f"{fake.url}/response/U7"
        refused = click_button(url, SECRET, keep_listed, user="U7", ts=ts, response_url=answer)
        assert refused.status == 200
        [refusal] = fake.wait_for("/response/U7")
        assert refusal.params["text"].startswith("Refused:")
        assert active_snooze(sqlite_engine, ids["listed"], NOW) is None
        # U8 holds finops for research, the machine's team: kept 7 days, message updated.
        assert click_button(url, SECRET, keep_listed, user="U8", ts=ts).status == 200
        [updated] = fake.wait_for("chat.update")
    until = NOW + timedelta(days=7)
    assert updated.params["ts"] == ts
    assert f"kept {ids['listed']} running until {until:%Y-%m-%d %H:%M} UTC" in json.dumps(
        updated.params["blocks"]
    )
    snooze = active_snooze(sqlite_engine, ids["listed"], NOW)
    assert snooze is not None and (snooze.kept_by, snooze.until) == ("slack:U8", until)

    calls: list[list[str]] = []
    stop_calls(calls)
    grant(sqlite_engine, "terminal:bob")
    done = bot.approve(action.id, "terminal:bob")
    assert calls == [[ids["idle"]]], done.text
    [skipped] = done.data["action"]["result"]["skipped"]
    assert skipped == {
        "id": ids["listed"],
        "reason": f"kept by slack:U8 until {until:%Y-%m-%d %H:%M} UTC: training",
    }


def test_a_request_escalates_past_the_owner_deadline_and_gets_a_receipt_once(
    aws: str,  # noqa: F811
    sqlite_engine: Engine,
    fake: FakeSlack,
) -> None:
    ids = make_fleet(sqlite_engine, ("idle", "listed"))
    # The idle machine stays idle through the next 3 hours; the other one's telemetry stops now.
    utilization(ids["idle"], quiet(-5, -180))
    approvers = {"gpu_approvers_channel": "slack:#gpu-approvers"}
    fires = iter(range(100))

    def scan(minutes: int) -> str:
        scheduler = scheduled_scan(
            sqlite_engine, fake, NOW + timedelta(minutes=minutes), **approvers
        )
        event = scheduler.fire(JOB, datetime.now(UTC) + timedelta(seconds=next(fires)))
        assert event is not None and event.exception is None, event
        return event.retval

    assert scan(0).startswith("0 escalated, 0 receipt(s); action #")
    [action] = list_actions(sqlite_engine)
    deadline = NOW + timedelta(minutes=120)
    owners = headlines(fake)
    assert sorted(call.params["channel"] for call in owners) == ["#gpu-alerts", "#search"]
    assert all(f"decide by {deadline:%Y-%m-%d %H:%M} UTC" in c.params["text"] for c in owners)

    assert scan(119).startswith("0 escalated, 0 receipt(s)")
    assert scan(120).startswith("1 escalated, 0 receipt(s)")
    assert scan(121).startswith("0 escalated, 0 receipt(s)")
    escalation = headlines(fake)[2:]
    assert [call.params["channel"] for call in escalation] == ["#gpu-approvers"]
    assert escalation[0].params["text"].startswith("Escalated: the owners did not decide")
    [approve] = buttons(escalation[0].params["blocks"], "action_approve")
    assert approve["value"] == str(action.id)

    calls: list[list[str]] = []
    stop_calls(calls)
    grant(sqlite_engine, "terminal:bob")
    later = slack_assistant(sqlite_engine, fake, NOW + timedelta(minutes=125))
    done = later.approve(action.id, "terminal:bob")
    assert calls == [[ids["idle"]]], done.text

    assert scan(130).startswith("0 escalated, 1 receipt(s)")
    assert scan(131).startswith("0 escalated, 0 receipt(s)")
    # The fake numbers the messages it is sent: 1800000000.000001, .000002, ...
    posted = {
        f"1800000000.{number:06d}": call.params["channel"]
        for number, call in enumerate(fake.of("chat.postMessage"), 1)
        if not call.params.get("thread_ts")
    }
    receipts = [
        call
        for call in fake.of("chat.postMessage")
        if call.params.get("thread_ts") and call.params["text"].startswith("Receipt")
    ]
    assert sorted(call.params["thread_ts"] for call in receipts) == sorted(posted)
    assert {call.params["channel"] for call in receipts} == set(posted.values())
    saving = A_HOURLY * 24
    for call in receipts:
        assert call.params["text"] == (
            f"Receipt for action #{action.id}: stopped 1 of 2 GPU machine(s), saving about "
            f"${saving:.2f}/day."
        )
        table = json.dumps(call.params["blocks"])
        assert ids["listed"] in table and "busy again" in table
