"""Scheduled budget alerts: drivers and fixes in the posted text, sent to the right recipient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, Engine

from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.scheduler import Scheduler
from bot.settings import Settings
from skills.catalog import load_skills
from storage import budgets as store
from storage import gpu_telemetry, schedules
from storage.allocation import set_contact
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.fake_slack import FakeSlack

DEMO = generate_demo_focus(date(2026, 11, 28), days=120)
NOW = datetime(2026, 11, 29, 12)
TEAM = DEMO.Tags.map(lambda tags: json.loads(tags).get("team") if isinstance(tags, str) else None)
DAY = DEMO.ChargePeriodStart.str[:10]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def add_budget(engine: Engine, scope: str, value: str, amount: float, notify: str | None = None):
    with engine.begin() as connection:
        store.upsert(
            connection, scope=scope, scope_value=value, period="monthly", amount=amount,
            currency="USD", by="t", at=NOW, notify=notify,
        )  # fmt: skip


def add_idle_gpu(connection: Connection, host: str) -> None:
    """Two hours of samples of one idle on-premises GPU, up to NOW."""
    gpu_telemetry.insert_samples(
        connection,
        [
            {
                "host": host,
                "gpu_index": 0,
                "sampled_at": NOW - timedelta(minutes=minutes),
                "utilization_pct": 0.0,
                "process_count": 0,
                "source": "nvml",
            }
            for minutes in range(0, 125, 5)
        ],
    )


def top_service_change(team: str) -> tuple[str, float]:
    """By pandas: the service of `team` up most from Oct 1-28 to Nov 1-28."""
    now = DEMO[TEAM.eq(team) & (DAY >= "2026-11-01") & (DAY <= "2026-11-28")].groupby("ServiceName")
    before = DEMO[TEAM.eq(team) & (DAY >= "2026-10-01") & (DAY <= "2026-10-28")].groupby(
        "ServiceName"
    )
    change = now.EffectiveCost.sum().sub(before.EffectiveCost.sum(), fill_value=0.0)
    return str(change.idxmax()), float(change.max())


def run_budget_check(engine: Engine, fake: FakeSlack) -> str:
    settings = Settings(
        database_url=str(engine.url),
        now=NOW,
        slack_bot_token="xoxb-test",
        slack_api_url=f"{fake.url}/api/",
        alert_channel="slack:#finops-alerts",
    )
    assistant = Assistant(settings, engine, load_skills())
    schedules.add(
        engine, "budget_check:default", kind="budget_check", target=None, args={},
        trigger=CronTrigger(hour=9, minute=0, timezone=UTC), when="daily", now=NOW,
    )  # fmt: skip
    scheduler = Scheduler(JobRuntime(assistant, notifier(settings)), replica="only")
    return scheduler.fire("budget_check:default", datetime.now(UTC)).retval


def test_alerts_name_drivers_and_fixes_and_reach_budget_owner_or_fallback(
    sqlite_engine: Engine, fake: FakeSlack
) -> None:
    ingest_frame(sqlite_engine, DEMO, "demo")
    in_november = (DAY >= "2026-11-01") & (DAY <= "2026-11-28")
    search = float(DEMO[TEAM.eq("search") & in_november].EffectiveCost.sum())
    research = float(DEMO[TEAM.eq("research") & in_november].EffectiveCost.sum())
    everything = float(DEMO[in_november].EffectiveCost.sum())
    with sqlite_engine.begin() as connection:
        set_contact(connection, "research", "slack:U0RESEARCH", by="t", at=NOW)
        add_idle_gpu(connection, "gpu-box-idle")
    add_budget(sqlite_engine, "owner", "search", search / 2)  # no contact: the fallback setting
    add_budget(sqlite_engine, "owner", "research", research / 2)  # the owner's contact
    add_budget(sqlite_engine, "*", "", everything / 2, notify="slack:#budgets")

    # Each budget is over: one alert for the actual thresholds, one for the forecast.
    assert run_budget_check(sqlite_engine, fake) == "6 budget alert(s)"
    posted = [call for call in fake.of("chat.postMessage") if not call.params.get("thread_ts")]
    by_channel: dict[str, list[str]] = {}
    for call in posted:
        by_channel.setdefault(call.params["channel"], []).append(call.params["text"])
    assert {name: len(texts) for name, texts in by_channel.items()} == {
        "#finops-alerts": 2,
        "U0RESEARCH": 2,
        "#budgets": 2,
    }
    for channel, team in (("#finops-alerts", "search"), ("U0RESEARCH", "research")):
        service, change = top_service_change(team)
        for text in by_channel[channel]:
            assert f"owner {team} has spent" in text or f"owner {team} is forecast" in text
            assert f"service {service} +${change:,.2f}" in text, text
    # Search's fixes are the anomaly skill's spikes for the team, largest first, with impacts.
    assistant = Assistant(Settings(now=NOW), sqlite_engine, load_skills())
    anomalies = assistant.ask("anomalies for team search since 2026-11-01", "x").reply.data
    spikes = sorted(
        (a for a in anomalies["alerts"] if a["impact"] > 0 and a["owner"] == "search"),
        key=lambda a: -a["impact"],
    )
    assert spikes, "the demo data has search anomalies in November"
    for text in by_channel["#finops-alerts"]:
        fixes = [line for line in text.splitlines() if line.startswith("• Fix: ")]
        assert len(fixes) == min(3, len(spikes)), text
        for line, spike in zip(fixes, spikes, strict=False):
            assert spike["key"] in line, (line, spike)
            assert f"${abs(spike['impact']):,.2f}" in line or f"${spike['actual']:,.2f}" in line
    # The idle on-premises GPU machine is a fix for all spend, priced to the period's end.
    assert all("Fix: stop idle GPU machine gpu-box-idle" in t for t in by_channel["#budgets"])
