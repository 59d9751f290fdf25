"""Budget fixes follow the owner resolution: spend an allocation rule assigns counts for its owner."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from storage import budgets as store
from storage.allocation import add_rule
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

DEMO = generate_demo_focus(date(2026, 11, 28), days=120)
NOW = datetime(2026, 11, 29, 12)
ACCOUNT = "answer-engine"  # an OpenAI project (sub account) the demo tags as team search
_COLUMN = {"resource": "ResourceId", "sku": "SkuId", "service": "ServiceName"}
"""The FOCUS column of the demo frame each anomaly level's key is in."""


def test_an_account_assigned_by_rule_moves_its_anomalies_to_the_new_owners_budget(
    sqlite_engine: Engine,
) -> None:
    ingest_frame(sqlite_engine, DEMO, "demo")
    assistant = make_assistant(sqlite_engine, NOW)
    # The anomaly skill's November spikes, before any rule: all tagged search.
    found = assistant.ask("anomalies since 2026-11-01", "x").reply.data["alerts"]
    spikes = [a for a in found if a["impact"] > 0]
    in_account = [a for a in spikes if a["sub_account"] == ACCOUNT]
    elsewhere = [a for a in spikes if a["sub_account"] != ACCOUNT]
    assert in_account and elsewhere and {a["owner"] for a in spikes} == {"search"}
    # By pandas: the account holds most of each of its anomalies' series on those days, so
    # the rule's owner owns them.
    day = DEMO.ChargePeriodStart.str[:10]
    for alert in in_account:
        days = (day >= alert["date"]) & (day <= alert["end_date"])
        series = DEMO[days & (DEMO[_COLUMN[alert["dimension"]]] == alert["key"])]
        share = series[series.SubAccountName == ACCOUNT].EffectiveCost.sum()
        assert share >= 0.5 * series.EffectiveCost.sum()

    team = DEMO.Tags.map(
        lambda tags: json.loads(tags).get("team") if isinstance(tags, str) else None
    )
    november = (day >= "2026-11-01") & (day <= "2026-11-28")
    with sqlite_engine.begin() as connection:
        add_rule(
            connection, owner="assistants", criteria={"sub_account": ACCOUNT}, by="t", at=NOW,
            override=True,
        )  # fmt: skip
        for owner, spent in (
            ("assistants", DEMO[november & (DEMO.SubAccountName == ACCOUNT)].EffectiveCost.sum()),
            ("search", DEMO[november & team.eq("search")].EffectiveCost.sum()),
        ):
            store.upsert(
                connection, scope="owner", scope_value=owner, period="monthly",
                amount=float(spent) / 2, currency="USD", by="t", at=NOW,
            )  # fmt: skip
    budgets = assistant.ask("which teams will overrun this month?", "x").reply.data["budgets"]
    fixes = {b["budget"]["scope_value"]: b["fixes"] for b in budgets}
    assert set(fixes) == {"assistants", "search"}
    by_impact = lambda alerts: sorted((a["impact"] for a in alerts), reverse=True)  # noqa: E731
    assert [f["amount"] for f in fixes["assistants"]] == pytest.approx(by_impact(in_account))
    assert [f["amount"] for f in fixes["search"]] == pytest.approx(by_impact(elsewhere))
    assert all(f["kind"] == "anomaly" for f in fixes["assistants"] + fixes["search"])
