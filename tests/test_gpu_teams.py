"""Keep buttons on a GPU stop request card in Teams, over real HTTP with a fake Bot Connector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from bot.pipeline import Assistant
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage.gpu_savings import active_snooze
from tests.fake_bot_connector import FakeBotConnector, mention, user
from tests.fake_slack import BotServer
from tests.guarded_fakes import grant
from tests.test_gpu_fleet import NOW, REGION, aws, make_fleet, moto_url  # noqa: F401 (fixtures)
from tests.test_teams import send, submit
from tests.test_teams_render import assert_valid_card


@pytest.fixture
def fake() -> Iterator[FakeBotConnector]:
    with FakeBotConnector() as fake:
        yield fake


def keep_submits(card: dict) -> list[dict]:
    """The data of every keep submit in the card body, in order."""
    return [
        action["data"]
        for element in card["body"]
        if element["type"] == "ActionSet"
        for action in element["actions"]
    ]


def keep(fake: FakeBotConnector, card_id: str, data: dict, who: dict) -> dict:
    body = submit(fake, card_id, "gpu_keep", data["action_id"], who)
    body["value"] = data
    return body


def test_keep_submits_snooze_a_machine_as_the_clicker_and_refresh_the_card(
    aws: str,  # noqa: F811
    sqlite_engine: Engine,
    fake: FakeBotConnector,
) -> None:
    ids = make_fleet(sqlite_engine, ("idle", "listed"))
    grant(sqlite_engine, "teams:aad-rita", team="research")
    settings = Settings(database_url=str(sqlite_engine.url), now=NOW, gpu_aws_regions=(REGION,))
    bot = Assistant(settings, sqlite_engine, load_skills())
    with BotServer(build_server(settings, bot)) as running:
        send(running, mention(fake.url, "stop the idle GPUs", thread="1790000000009"))
        fake.wait_for("reply", "message")
        ((call, card),) = fake.cards()
        assert_valid_card(card)
        action_id = int(card["actions"][0]["data"]["action_id"])
        submits = keep_submits(card)
        targets = bot.approvals.still_pending_reply(action_id).data["action"]["targets"]
        assert submits == [
            {"verb": "gpu_keep", "action_id": action_id, "machine": t["id"], "hours": hours}
            for t in targets
            for hours in (24, 168)
        ]
        week = next(s for s in submits if s["machine"] == ids["listed"] and s["hours"] == 168)

        # Sam holds no role for research: refused under the card, nothing kept.
        send(running, keep(fake, call.id, week, user("aad-sam", "Sam")))
        refusal = fake.wait_for("reply", "message", count=2)[1]
        assert refusal.body["text"].startswith("Refused:")
        assert active_snooze(sqlite_engine, ids["listed"], NOW) is None

        send(running, keep(fake, call.id, week, user("aad-rita", "Rita")))
        (update,) = fake.wait_for("update")
    until = NOW + timedelta(days=7)
    assert update.activity_id == call.id
    ((_, updated),) = fake.cards("update")
    assert_valid_card(updated)
    assert f"Rita kept {ids['listed']} running until {until:%Y-%m-%d %H:%M} UTC" in json.dumps(
        updated
    )
    assert updated["actions"][0]["data"] == {"verb": "approve", "action_id": action_id}
    snooze = active_snooze(sqlite_engine, ids["listed"], NOW)
    assert snooze is not None and (snooze.kept_by, snooze.until) == ("teams:aad-rita", until)
    assert snooze.reason == "training"
