"""Feedback tunes detection: "Expected" raises a series' minimum impact for later anomalies."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine

from bot.pipeline import Assistant
from bot.server import build_server
from storage.ingest import ingest_frame
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_slack import BotServer, FakeSlack
from tests.test_alerts import (
    FRAME,
    alert_scheduler,
    assistant_for,
    click,
    headline_posts,
    list_anomalies,
    scan,
    stored,
)

NEXT_WEEK = "2026-11-27"
"""Eight days after the planted gpt-4o spike (2026-11-19): a separate episode."""


demo_file, engine = demo_fixtures("alerts_tuning", FRAME)
fake = fake_slack_fixture()


def spike_next_week(engine: Engine, excess: float) -> None:
    """Reload OpenAI's November with gpt-4o costing `excess` more on NEXT_WEEK (pro rata)."""
    november = FRAME[
        (FRAME["ProviderName"] == "OpenAI")
        & (pd.to_datetime(FRAME["BillingPeriodStart"]).dt.strftime("%Y-%m") == "2026-11")
    ].copy()
    day = (november["SkuId"] == "gpt-4o") & (
        pd.to_datetime(november["ChargePeriodStart"]).dt.strftime("%Y-%m-%d") == NEXT_WEEK
    )
    total = november.loc[day, "EffectiveCost"].sum()
    assert total > 0
    for column in ("EffectiveCost", "BilledCost"):
        november.loc[day, column] = november.loc[day, column] * (1 + excess / total)
    ingest_frame(engine, november, "demo data")


def gpt4o_alerts(assistant: Assistant) -> list[dict]:
    reply = list_anomalies(assistant)
    return [alert for alert in reply.data["alerts"] if alert["key"] == "gpt-4o"]


def test_a_same_size_spike_alerts_when_nobody_called_the_first_expected(
    fake: FakeSlack, engine: Engine
) -> None:
    """The control: without feedback, next week's copy of the spike is an anomaly."""
    first = gpt4o_alerts(assistant_for(fake, engine))
    assert [alert["date"] for alert in first] == ["2026-11-19"]
    spike_next_week(engine, first[0]["impact"])
    assert [alert["date"] for alert in gpt4o_alerts(assistant_for(fake, engine))] == [
        "2026-11-19",
        NEXT_WEEK,
    ]


def test_expected_raises_the_series_minimum_so_only_a_bigger_spike_alerts(
    fake: FakeSlack, engine: Engine
) -> None:
    assistant = assistant_for(fake, engine)
    scheduler = alert_scheduler(assistant)
    scan(scheduler)
    spike = stored(engine)["gpt-4o"]
    alert = json.loads(spike["alert_json"])["alert"]
    assert (alert["date"], alert["days"]) == ("2026-11-19", 1)
    with BotServer(build_server(assistant.settings, assistant)) as server:
        click(server, "expected", spike["id"], spike["message_ts"])
        fake.wait_for("chat.update")
    # Raised to 1.5 times the daily impact called expected (one day flagged).
    raised = 1.5 * alert["impact"]
    context = list_anomalies(assistant).context or ""
    assert f"raised by feedback: SKU gpt-4o above ${raised:,.2f} a day" in context

    spike_next_week(engine, alert["impact"])
    scan(scheduler)
    assert len(headline_posts(fake)) == 2
    assert gpt4o_alerts(assistant) == []

    spike_next_week(engine, 2.5 * alert["impact"])
    scan(scheduler)
    posts = headline_posts(fake)
    assert len(posts) == 3
    assert "SKU gpt-4o" in posts[-1].params["text"] and NEXT_WEEK in posts[-1].params["text"]
    [bigger] = gpt4o_alerts(assistant)
    assert bigger["date"] == NEXT_WEEK and bigger["impact"] > raised


def test_not_an_issue_mutes_only_the_current_episode(fake: FakeSlack, engine: Engine) -> None:
    assistant = assistant_for(fake, engine)
    scheduler = alert_scheduler(assistant)
    scan(scheduler)
    spike = stored(engine)["gpt-4o"]
    impact = json.loads(spike["alert_json"])["alert"]["impact"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        click(server, "not_an_issue", spike["id"], spike["message_ts"])
        fake.wait_for("chat.update")
    # The muted episode stays quiet; a same-size spike next week is a new episode and alerts.
    spike_next_week(engine, impact)
    scan(scheduler)
    posts = headline_posts(fake)
    assert len(posts) == 3 and NEXT_WEEK in posts[-1].params["text"]
    assert "gpt-4o" in posts[-1].params["text"]
