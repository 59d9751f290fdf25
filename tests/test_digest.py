"""The weekly digest over the demo store, checked against pandas on the generated FOCUS frame."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.pipeline import Assistant
from skills.catalog import load_skills
from storage import allocation
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

END = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 12)
WEEK = (date(2026, 11, 16), date(2026, 11, 22))
BEFORE = (date(2026, 11, 9), date(2026, 11, 15))
PNG = b"\x89PNG\r\n\x1a\n"
FRAME = generate_demo_focus(END, days=120)
FRAME["day"] = pd.to_datetime(FRAME["ChargePeriodStart"]).dt.date
FRAME["team"] = FRAME["Tags"].map(
    lambda tags: json.loads(tags).get("team") if isinstance(tags, str) else None
)
DIGEST = load_skills().get("digest_show")


def within(frame: pd.DataFrame, span: tuple[date, date]) -> pd.DataFrame:
    return frame[(frame["day"] >= span[0]) & (frame["day"] <= span[1])]


def changes(frame: pd.DataFrame, column: str) -> dict[str, float]:
    now = within(frame, WEEK).groupby(column)["EffectiveCost"].sum()
    before = within(frame, BEFORE).groupby(column)["EffectiveCost"].sum()
    delta = now.sub(before, fill_value=0.0)
    return delta[delta.abs().sort_values(ascending=False).index[:3]].to_dict()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    engine = open_database(f"sqlite:///{tmp_path_factory.mktemp('digest') / 'spendbot.db'}")
    ingest_frame(engine, FRAME.drop(columns=["day", "team"]), "demo")
    return make_assistant(engine, NOW)


@pytest.fixture(scope="module")
def everything(demo: Assistant):
    reply = demo.execute(DIGEST, {}, "test:user")
    assert not reply.is_error, reply.text
    return reply


def test_total_and_week_over_week_change(everything) -> None:
    data = everything.data
    assert (data["period"]["start"], data["period"]["end"]) == tuple(d.isoformat() for d in WEEK)
    total = within(FRAME, WEEK)["EffectiveCost"].sum()
    previous = within(FRAME, BEFORE)["EffectiveCost"].sum()
    assert data["total"] == pytest.approx(total, abs=1e-6)
    assert data["previous_total"] == pytest.approx(previous, abs=1e-6)
    assert data["change_pct"] == pytest.approx((total - previous) / previous * 100, abs=0.01)
    assert f"${total:,.2f}" in everything.text
    assert (
        "EffectiveCost" in everything.context and "2026-11-16 to 2026-11-22" in everything.context
    )


def test_top_movers_match_pandas(everything) -> None:
    movers = everything.data["movers"]
    for name, column in (("service", "ServiceName"), ("resource", "ResourceId")):
        expected = changes(FRAME, column)
        got = {item["key"]: item["change"] for item in movers[name]}
        assert got == pytest.approx(expected, abs=1e-6), name
    teams = changes(FRAME.assign(team=FRAME["team"].fillna("(none)")), "team")
    assert {item["key"]: item["change"] for item in movers["team"]} == pytest.approx(
        teams, abs=1e-6
    )
    assert len(everything.table.rows) == 9


def test_unallocated_spend_and_share(everything) -> None:
    week = within(FRAME, WEEK)
    untagged = week[week["team"].isna()]["EffectiveCost"].sum()
    unallocated = everything.data["unallocated"]
    assert unallocated["amount"] == pytest.approx(untagged, abs=1e-6)
    assert unallocated["share_pct"] == pytest.approx(
        untagged / week["EffectiveCost"].sum() * 100, abs=0.01
    )
    assert "Unallocated (no owner tag or allocation rule)" in everything.text


def test_allocation_rules_shrink_unallocated_spend(sqlite_engine: Engine) -> None:
    ingest_frame(sqlite_engine, FRAME.drop(columns=["day", "team"]), "demo")
    with sqlite_engine.begin() as connection:
        allocation.add_rule(
            connection, owner="platform", criteria={"service": "AWS Data Transfer"}, by="t", at=NOW
        )
    reply = make_assistant(sqlite_engine, NOW).execute(DIGEST, {}, "test:user")
    week = within(FRAME, WEEK)
    untagged = week[week["team"].isna()]
    claimed = untagged[untagged["ServiceName"] == "AWS Data Transfer"]["EffectiveCost"].sum()
    assert claimed > 0
    expected = untagged["EffectiveCost"].sum() - claimed
    assert reply.data["unallocated"]["amount"] == pytest.approx(expected, abs=1e-6)


def test_open_anomalies_are_the_planted_ones(everything) -> None:
    anomalies = everything.data["anomalies"]
    assert [(a["dimension"], a["owner"]) for a in anomalies] == [
        ("resource", "search"),
        ("sku", "search"),
    ]
    assert anomalies[1]["key"] == "gpt-4o"
    assert "2 open anomalies" in everything.text


def test_chart_is_a_png_of_eight_weeks_by_service(everything) -> None:
    assert everything.chart.startswith(PNG)
    image = imread(io.BytesIO(everything.chart), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    chart = everything.data["chart"]
    assert len(chart["weeks"]) == 8 and chart["weeks"][-1] == "2026-11-16"
    first = date.fromisoformat(chart["weeks"][0])
    for index, week in enumerate(chart["weeks"]):
        start = date.fromisoformat(week)
        expected = within(FRAME, (start, start + timedelta(days=6)))["EffectiveCost"].sum()
        assert sum(series[index] for series in chart["series"].values()) == pytest.approx(
            expected, abs=0.1
        )
    assert first == date(2026, 9, 28)
    json.dumps(everything.data)


def test_team_scope(demo: Assistant) -> None:
    answer = demo.ask("give me the digest for team research", "test:user")
    assert answer.tool_calls[0]["name"] == "digest_show"
    data = answer.reply.data
    research = FRAME[FRAME["team"] == "research"]
    assert data["scope"] == {"team": "research"}
    assert data["total"] == pytest.approx(within(research, WEEK)["EffectiveCost"].sum(), abs=1e-6)
    assert "team" not in data["movers"] and data["unallocated"] is None
    assert data["anomalies"] == []
    assert "No open anomalies." in answer.reply.text
    assert answer.reply.chart.startswith(PNG)


def test_bad_scope_is_a_user_error(demo: Assistant) -> None:
    reply = demo.execute(DIGEST, {"scope": {"region": "us-east-1"}}, "test:user")
    assert reply.is_error and "cannot be scoped by 'region'" in reply.text
    reply = demo.execute(DIGEST, {"scope": {"team": "nobody"}}, "test:user")
    assert reply.is_error and "'nobody' is not a known value of tag team" in reply.text


def test_cli_digest_json_and_chart(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'cli.db'}")
    ingest_frame(engine, FRAME.drop(columns=["day", "team"]), "demo")
    engine.dispose()
    env = {
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SPENDBOT_NOW": NOW.isoformat(),
        "ANTHROPIC_API_KEY": None,
    }
    chart = tmp_path / "digest.png"
    runner = CliRunner()
    arguments = ["digest", "--json", "--scope", "team=search", "--chart", str(chart)]
    result = runner.invoke(app, arguments, env=env)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    search = FRAME[FRAME["team"] == "search"]
    assert output["data"]["total"] == pytest.approx(
        within(search, WEEK)["EffectiveCost"].sum(), abs=1e-6
    )
    assert output["text"].startswith("Digest for team search, last week")
    assert chart.read_bytes().startswith(PNG)
    assert runner.invoke(app, ["digest", "--scope", "team"], env=env).exit_code == 2
