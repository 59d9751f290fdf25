"""Alert owners come from the one owner-resolution path; only FinOps or the owner give feedback."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, select

from bot.server import build_server
from storage import allocation
from storage.models import anomaly_alerts, audit_log
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_slack import BotServer, FakeSlack
from tests.test_alerts import (
    FRAME,
    P5_RESOURCE,
    alert_scheduler,
    ask_in_thread,
    assistant_for,
    click,
    headline_posts,
    scan,
    stored,
)

ML_PROD = "314159265358"
OWNER, OWNER_USER, STRANGER = "ml-platform", "U5", "U8"
UNTAGGED = FRAME.copy()
UNTAGGED.loc[UNTAGGED["ResourceId"] == P5_RESOURCE, "Tags"] = None
"""The demo data with the GPU instance's tags removed: only a rule can give it an owner."""


demo_file, engine = demo_fixtures("alerts_owners", UNTAGGED)
fake = fake_slack_fixture()


def assign_account(engine: Engine) -> None:
    """An allocation rule giving the ml-prod account to ml-platform, reachable at OWNER_USER."""
    at = datetime(2026, 11, 1)
    with engine.begin() as connection:
        allocation.add_rule(
            connection, owner=OWNER, criteria={"sub_account": ML_PROD}, by="test", at=at
        )
        allocation.set_contact(connection, OWNER, f"slack:{OWNER_USER}", by="test", at=at)


def shift_post(fake: FakeSlack) -> str:
    return next(
        call.params["text"] for call in headline_posts(fake) if P5_RESOURCE in call.params["text"]
    )


def test_untagged_resource_alert_has_no_owner_without_a_rule(
    fake: FakeSlack, engine: Engine
) -> None:
    scan(alert_scheduler(assistant_for(fake, engine)))
    assert "no owner" in shift_post(fake)


def test_an_account_rule_names_the_alert_owner(fake: FakeSlack, engine: Engine) -> None:
    assign_account(engine)
    scan(alert_scheduler(assistant_for(fake, engine)))
    assert f"owner: team {OWNER}." in shift_post(fake)
    detail = json.loads(stored(engine)[P5_RESOURCE]["alert_json"])
    assert (detail["alert"]["owner"], detail["contact"]) == (OWNER, f"slack:{OWNER_USER}")


def test_only_finops_or_the_owner_may_give_feedback(fake: FakeSlack, engine: Engine) -> None:
    assign_account(engine)
    assistant = assistant_for(fake, engine)
    scan(alert_scheduler(assistant))
    shift = stored(engine)[P5_RESOURCE]
    updates = len(fake.of("chat.update"))
    with BotServer(build_server(assistant.settings, assistant)) as server:
        refusal_url = f"{fake.url}/response/stranger"
        click(server, "expected", shift["id"], shift["message_ts"], STRANGER, refusal_url)
        [refusal] = fake.wait_for("/response/stranger")
        click(server, "expected", shift["id"], shift["message_ts"], OWNER_USER)
        fake.wait_for("chat.update", updates + 1)
    assert refusal.params["response_type"] == "ephemeral"
    assert "Only FinOps or the owner" in refusal.params["text"]
    assert f"owner: {OWNER}" in refusal.params["text"]
    with engine.connect() as connection:
        row = connection.execute(
            select(anomaly_alerts.c.status, anomaly_alerts.c.feedback_by).where(
                anomaly_alerts.c.id == shift["id"]
            )
        ).one()
        audited = connection.execute(
            select(audit_log.c.event, audit_log.c.actor, audit_log.c.detail_json)
            .where(audit_log.c.event.in_(["refused", "anomaly_feedback"]))
            .order_by(audit_log.c.id)
        ).all()
    assert tuple(row) == ("acknowledged", f"slack:{OWNER_USER}")
    assert [(event, actor, json.loads(detail)["alert_id"]) for event, actor, detail in audited] == [
        ("refused", f"slack:{STRANGER}", shift["id"]),
        ("anomaly_feedback", f"slack:{OWNER_USER}", shift["id"]),
    ]


def test_who_owns_this_in_an_alert_thread_names_the_owner_and_contact(
    fake: FakeSlack, engine: Engine
) -> None:
    assign_account(engine)
    assistant = assistant_for(fake, engine)
    scan(alert_scheduler(assistant))
    shift = stored(engine)[P5_RESOURCE]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        answer = ask_in_thread(server, fake, shift["message_ts"], "who owns this?")
    text = answer.params["text"]
    assert f"{P5_RESOURCE} is owned by {OWNER}" in text
    assert f"Contact: slack:{OWNER_USER}" in text
