"""Owners: allocation rules resolved at query time, checked against an independent pandas model."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, text

from bot.pipeline import Assistant
from skills.owners import parse_assign_text
from storage import allocation, audit
from storage.allocation import OWNER_TAG_KEYS, UNALLOCATED
from storage.costs import OWNER, Filter, SpendQuery, run_spend
from storage.database import _alembic_config, open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from storage.models import Base, allocation_rules
from tests.conftest import make_assistant
from tests.guarded_fakes import grant

DEMO = generate_demo_focus(date(2026, 11, 28), days=90)
NOW = datetime(2026, 11, 29, 12)
FINOPS = "terminal:fin"
OCTOBER = ("2026-10-01", "2026-11-01")

# An untagged EC2 instance in the ml-dev account, and a resource tagged team=research.
UNTAGGED_ML_DEV = DEMO[(DEMO.SubAccountName == "ml-dev") & DEMO.Tags.isna()].ResourceId.iloc[0]
TAGGED_RESEARCH = DEMO[DEMO.Tags.fillna("").str.contains('"team": "research"')].ResourceId.iloc[0]

RULES = (
    {"owner": "ml-platform", "sub_account": "ml-dev"},  # an account default
    {"owner": "data", "service": "Amazon Bedrock"},  # untagged spend only
    {"owner": "platform", "service": "aws data transfer", "override": True},
    {"owner": "search", "resource": TAGGED_RESEARCH[:6] + "*", "override": True},
)


# The independent model: what the docs say, written in plain Python over the FOCUS frame ------

COLUMNS = {
    "provider": ("ProviderName",),
    "billing_account": ("BillingAccountId", "BillingAccountName"),
    "sub_account": ("SubAccountId", "SubAccountName"),
    "service": ("ServiceName",),
    "region": ("RegionId", "RegionName"),
    "sku": ("SkuId",),
    "resource": ("ResourceId", "ResourceName"),
}
ACCOUNT = {"provider", "billing_account", "sub_account"}


def _tags(value: object) -> dict[str, str]:
    if not isinstance(value, str) or not value:
        return {}
    return {key.lower(): str(v) for key, v in json.loads(value).items()}


def _same(cell: object, wanted: str) -> bool:
    if not isinstance(cell, str):
        return False
    return fnmatchcase(cell.lower(), wanted.lower())


def _matches(row: pd.Series, tags: dict[str, str], rule: dict) -> bool:
    for name, wanted in rule.items():
        if name in ("owner", "override", "tag_value"):
            continue
        if name == "tag_key":
            value = tags.get(wanted.lower())
            if not value or (rule.get("tag_value") and not _same(value, rule["tag_value"])):
                return False
        elif not any(_same(row[column], wanted) for column in COLUMNS[name]):
            return False
    return True


def expected_owner(row: pd.Series, rules: list[dict]) -> str:
    tags = _tags(row.Tags)
    criteria = [{k: v for k, v in rule.items() if k not in ("owner", "override")} for rule in rules]
    overrides = [r for r in rules if r.get("override")]
    account = [
        r
        for r, c in zip(rules, criteria, strict=True)
        if not r.get("override") and set(c) <= ACCOUNT
    ]
    ordinary = [r for r in rules if not r.get("override") and r not in account]
    for rule in overrides:
        if _matches(row, tags, rule):
            return rule["owner"]
    for key in OWNER_TAG_KEYS:
        if tags.get(key):
            return tags[key]
    for rule in ordinary + account:
        if _matches(row, tags, rule):
            return rule["owner"]
    return UNALLOCATED


def expected_by_owner(rules: list[dict], start: str, end: str) -> dict[str, float]:
    frame = DEMO[(DEMO.ChargePeriodStart >= start) & (DEMO.ChargePeriodStart < end)]
    owners = frame.apply(lambda row: expected_owner(row, rules), axis=1)
    return frame.groupby(owners)["EffectiveCost"].sum().to_dict()


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def assistant(engine: Engine) -> Assistant:
    ingest_frame(engine, DEMO, "demo")
    grant(engine, FINOPS, "finops")
    return make_assistant(engine, NOW)


def assign(assistant: Assistant, user: str = FINOPS, **args: object):
    return assistant.execute(assistant.registry.get("owner_assign"), args, user)


def by_owner(assistant: Assistant, question: str = "spend by owner last month") -> dict[str, float]:
    answer = assistant.ask(question, "terminal:reader")
    assert not answer.reply.is_error, answer.reply.text
    assert answer.tool_calls[0]["name"] == "spend_query"
    return {row["key"]["owner"]: row["amount"] for row in answer.reply.data["rows"]}


# Tests --------------------------------------------------------------------------------------


def test_owner_totals_match_an_independent_model(assistant: Assistant) -> None:
    assert by_owner(assistant) == pytest.approx(expected_by_owner([], *OCTOBER), abs=1e-6)
    for rule in RULES:
        reply = assign(assistant, **rule)
        assert not reply.is_error, reply.text
    got = by_owner(assistant)
    want = expected_by_owner(list(RULES), *OCTOBER)
    assert got == pytest.approx(want, abs=1e-6)
    # The rules moved real money, both ways round the tag: the test would notice a mistake.
    assert want["platform"] > 1000 and want["ml-platform"] > 0
    october = DEMO[(DEMO.ChargePeriodStart >= OCTOBER[0]) & (DEMO.ChargePeriodStart < OCTOBER[1])]
    assert sum(got.values()) == pytest.approx(october.EffectiveCost.sum(), abs=1e-6)


def test_every_owner_figure_is_one_plain_sql_statement(assistant: Assistant) -> None:
    for rule in RULES:
        assign(assistant, **rule)
    answer = assistant.ask("spend for owner=data last month by service", "terminal:reader")
    data = answer.reply.data
    assert data["filters"] == [{"dimension": OWNER, "values": ["data"], "exclude": False}]
    with assistant.engine.connect() as connection:
        rows = connection.execute(text(data["sql"])).all()
    assert float(sum(row.amount for row in rows)) == pytest.approx(data["total"], abs=1e-6)
    assert data["total"] == pytest.approx(
        expected_by_owner(list(RULES), *OCTOBER)["data"], abs=1e-6
    )
    assert "CASE WHEN" in data["sql"]


def test_a_rule_change_needs_finops_applies_retroactively_and_is_audited(
    assistant: Assistant,
) -> None:
    before = by_owner(assistant)
    refused = assign(assistant, user="terminal:mallory", owner="ml-platform", sub_account="ml-dev")
    assert refused.is_error and "finops" in refused.text
    assert by_owner(assistant) == before
    answer = assistant.ask("assign the ml-dev account to ml-platform", FINOPS)
    assert not answer.reply.is_error, answer.reply.text
    assert answer.tool_calls[0]["input"]["sub_account"] == "ml-dev"
    after = by_owner(assistant)
    moved = before[UNALLOCATED] - after[UNALLOCATED]
    assert moved > 0
    assert after["ml-platform"] == pytest.approx(before["ml-platform"] + moved, abs=1e-6)
    assert sum(after.values()) == pytest.approx(sum(before.values()), abs=1e-6)
    entries = audit.query(assistant.engine)
    assert ("refused", "terminal:mallory") in [(e.event, e.actor) for e in entries]
    changed = [e for e in entries if e.event == "allocation_changed"]
    assert len(changed) == 1 and changed[0].actor == FINOPS
    assert changed[0].detail["added"]["criteria"] == {"sub_account": "ml-dev"}
    assert changed[0].action_id is not None


def test_who_owns_a_resource_and_who_hears_about_it(assistant: Assistant) -> None:
    ask = lambda q: assistant.ask(q, "terminal:reader").reply  # noqa: E731
    reply = ask(f"who owns {TAGGED_RESEARCH}?")
    assert reply.data["owner"] == "research" and reply.data["via"] == "tag team"
    reply = ask(f"who owns {UNTAGGED_ML_DEV}?")
    assert reply.data["owner"] == UNALLOCATED
    assign(assistant, owner="ml-platform", sub_account="ml-dev")
    reply = ask(f"who owns {UNTAGGED_ML_DEV}?")
    assert (reply.data["owner"], reply.data["via"]) == ("ml-platform", "account default #1")
    want = DEMO[DEMO.ResourceId == UNTAGGED_ML_DEV].EffectiveCost.sum()
    assert reply.data["rows"][0]["amount"] == pytest.approx(want, abs=1e-6)
    # The one resolution path: resource -> owner -> contact, else the fallback channel.
    engine = assistant.engine
    recipient = allocation.resolve_recipient(
        engine, resource=UNTAGGED_ML_DEV, fallback="slack:#finops"
    )
    assert (recipient.owner, recipient.contact) == ("ml-platform", "slack:#finops")
    with engine.begin() as connection:
        allocation.set_contact(connection, "ml-platform", "slack:#ml-platform", by="t", at=NOW)
    recipient = allocation.resolve_recipient(
        engine, resource=UNTAGGED_ML_DEV, fallback="slack:#finops"
    )
    assert (recipient.owner, recipient.contact, recipient.via) == (
        "ml-platform",
        "slack:#ml-platform",
        "account default #1",
    )
    nobody = allocation.resolve_recipient(
        engine, resource="no-such-thing", fallback="slack:#finops"
    )
    assert (nobody.owner, nobody.contact) == (None, "slack:#finops")
    assert ask(f"who owns {TAGGED_RESEARCH}?").data["via"] == "tag team"


def test_an_override_beats_the_tag_and_removing_it_restores_the_tag(assistant: Assistant) -> None:
    reply = assign(assistant, owner="search", resource=TAGGED_RESEARCH, override=True)
    assert reply.data["action"]["state"] == "succeeded", reply.text
    owner = assistant.ask(f"who owns {TAGGED_RESEARCH}", "x").reply.data
    assert (owner["owner"], owner["via"]) == ("search", "override #1")
    removed = assistant.ask("remove allocation rule 1", FINOPS)
    assert not removed.reply.is_error, removed.reply.text
    assert assistant.ask(f"who owns {TAGGED_RESEARCH}", "x").reply.data["owner"] == "research"


def test_unallocated_spend_and_coverage_match_pandas(assistant: Assistant) -> None:
    want = expected_by_owner([], *OCTOBER)
    total = sum(want.values())
    reply = assistant.ask("show unallocated spend last month", "x").reply
    assert reply.data["unallocated"] == pytest.approx(want[UNALLOCATED], abs=1e-6)
    assert reply.data["total"] == pytest.approx(total, abs=1e-6)
    assert sum(row["amount"] for row in reply.data["rows"]) == pytest.approx(
        want[UNALLOCATED], abs=1e-6
    )
    coverage = assistant.ask("allocation coverage", "x").reply.data["months"]
    october = next(month for month in coverage if month["month"] == "2026-10")
    assert october["coverage_pct"] == pytest.approx(
        round((total - want[UNALLOCATED]) / total * 100, 2)
    )
    assert october["allocated"] + october["unallocated"] == pytest.approx(total, abs=1e-6)


def test_rules_are_listed_in_the_order_they_are_tried(assistant: Assistant) -> None:
    for rule in RULES:
        assign(assistant, **rule)
    data = assistant.ask("list rules", "x").reply.data
    assert [(rule["id"], rule["kind"]) for rule in data["rules"]] == [
        (3, "override"),
        (4, "override"),
        (2, "rule"),
        (1, "account default"),
    ]
    assert data["owner_tag_keys"] == ["team"]


@pytest.mark.parametrize(
    ("message", "criteria"),
    [
        ("assign the ml-dev account to ml-platform", {"sub_account": "ml-dev"}),
        ("assign service Amazon Bedrock to data", {"service": "Amazon Bedrock"}),
        ("allocate i-0abc* to search", {"resource": "i-0abc*"}),
        ("assign aws to platform", {"provider": "AWS"}),
        ("assign env=dev to ml-platform", {"tag_key": "env", "tag_value": "dev"}),
        ("assign region westeurope to research", {"region": "westeurope"}),
    ],
)
def test_assign_phrases(sqlite_engine: Engine, message: str, criteria: dict) -> None:
    ingest_frame(sqlite_engine, DEMO, "demo")
    context = make_assistant(sqlite_engine, NOW).context("x")
    assert parse_assign_text(message, context).criteria == criteria


def test_the_migration_matches_the_models_and_downgrades(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = ("owners", "allocation_rules", "cost_splits", "budgets", "budget_alerts")
    pattern = re.compile(rf"['<]({'|'.join(mine)})['>]|ix_({'|'.join(mine)})_")
    assert [diff for diff in diffs if pattern.search(repr(diff))] == []
    config = _alembic_config(engine)
    command.downgrade(config, "0004")
    with engine.connect() as connection:
        assert not set(mine) & set(engine.dialect.get_table_names(connection))
    command.upgrade(config, "head")


# Property: whatever the rules, owners partition the spend -----------------------------------

VALUES = {
    "provider": sorted(DEMO.ProviderName.dropna().unique()),
    "sub_account": sorted(DEMO.SubAccountName.dropna().unique()),
    "service": sorted(DEMO.ServiceName.dropna().unique()),
    "region": sorted(DEMO.RegionId.dropna().unique()),
    "resource": [*sorted(DEMO.ResourceId.dropna().unique())[:6], "i-0*", "*", "*_*", "%"],
}
rule_strategy = st.builds(
    lambda criterion, owner, override: {
        "owner": owner,
        criterion[0]: criterion[1],
        "override": override,
    },
    st.sampled_from(sorted(VALUES)).flatmap(
        lambda field: st.tuples(st.just(field), st.sampled_from(VALUES[field]))
    ),
    st.sampled_from(["research", "search", "x-team", "y"]),
    st.booleans(),
)
tag_rule = st.builds(
    lambda value, owner: {"owner": owner, "tag_key": "env", "tag_value": value, "override": True},
    st.sampled_from(["prod", "dev", "st*", "*"]),
    st.sampled_from(["research", "z-team"]),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = open_database(f"sqlite:///{Path(tmp_path_factory.mktemp('owners')) / 'o.db'}")
    ingest_frame(engine, DEMO, "demo")
    return engine


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rules=st.lists(st.one_of(rule_strategy, tag_rule), max_size=6),
    month=st.sampled_from(["2026-09", "2026-10", "2026-11"]),
    by_service=st.booleans(),
)
def test_owner_groups_always_sum_to_the_total(
    store: Engine, rules: list[dict], month: str, by_service: bool
) -> None:
    with store.begin() as connection:
        connection.execute(delete(allocation_rules))
        for rule in rules:
            criteria = {k: v for k, v in rule.items() if k not in ("owner", "override")}
            allocation.add_rule(
                connection,
                owner=rule["owner"],
                criteria=criteria,
                override=rule["override"],
                by="t",
                at=NOW,
            )
    start = datetime.fromisoformat(f"{month}-01")
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    total = run_spend(store, SpendQuery(start, end))[0]
    groups = ("owner", "service") if by_service else ("owner",)
    rows = run_spend(store, SpendQuery(start, end, group_by=groups))
    assert sum(row.amount for row in rows) == pytest.approx(total.amount, abs=1e-6)
    assert sum(row.line_items for row in rows) == total.line_items
    owners: dict[str, float] = {}
    for row in rows:
        owners[row.key[0]] = owners.get(row.key[0], 0.0) + row.amount
    want = expected_by_owner(rules, f"{month}-01", f"{end:%Y-%m-%d}")
    assert owners == pytest.approx(want, abs=1e-6)
    # Filtering on an owner gives that owner's group, nothing more or less.
    some = sorted(owners)[0]
    only = run_spend(store, SpendQuery(start, end, filters=(Filter(OWNER, (some,)),)))[0]
    assert only.amount == pytest.approx(owners[some], abs=1e-6)


# Shared costs -------------------------------------------------------------------------------

amounts = st.floats(min_value=-1e3, max_value=1e7, allow_nan=False, allow_infinity=False)
owner_names = st.sampled_from(["a", "b", "c", "d", "pool", UNALLOCATED])


@st.composite
def split_strategy(draw: st.DrawFn) -> allocation.Split:
    pool = draw(st.sampled_from(["pool", "a", "d"]))
    others = [name for name in ("a", "b", "c", "d") if name != pool]
    method = draw(st.sampled_from(allocation.SPLIT_METHODS))
    chosen = draw(st.lists(st.sampled_from(others), unique=True, min_size=1))
    if method == "fixed":
        cuts = sorted(
            draw(st.lists(st.integers(0, 100), min_size=len(chosen) - 1, max_size=len(chosen) - 1))
        )
        edges = [0, *cuts, 100]
        return allocation.Split(
            pool,
            method,
            percentages=tuple(
                (owner, float(edges[i + 1] - edges[i])) for i, owner in enumerate(chosen)
            ),
        )
    listed = () if method == "proportional" and draw(st.booleans()) else tuple(chosen)
    return allocation.Split(pool, method, owners=listed)


@settings(max_examples=200, deadline=None)
@given(
    totals=st.dictionaries(owner_names, amounts, max_size=6),
    splits=st.lists(split_strategy(), max_size=3),
)
def test_splits_never_lose_or_double_count_spend(totals: dict, splits: list) -> None:
    result = allocation.apply_splits(totals, splits)
    assert sum(f["total"] for f in result.values()) == pytest.approx(sum(totals.values()), abs=1e-3)
    assert sum(f["shared"] for f in result.values()) == pytest.approx(0.0, abs=1e-3)
    for owner, figures in result.items():
        assert figures["direct"] + figures["shared"] == pytest.approx(figures["total"], abs=1e-3)
        assert figures["direct"] == totals.get(owner, 0.0)


def test_fixed_even_and_proportional_splits() -> None:
    totals = {"platform": 1000.0, "research": 3000.0, "search": 1000.0, UNALLOCATED: 50.0}
    fixed = allocation.apply_splits(
        totals,
        [allocation.Split("platform", "fixed", percentages=(("research", 60.0), ("search", 40.0)))],
    )
    assert {k: v["total"] for k, v in fixed.items()} == {
        "platform": 0.0,
        "research": 3600.0,
        "search": 1400.0,
        UNALLOCATED: 50.0,
    }
    even = allocation.apply_splits(
        totals, [allocation.Split("platform", "even", ("research", "search"))]
    )
    assert even["research"]["shared"] == even["search"]["shared"] == 500.0
    by_spend = allocation.apply_splits(totals, [allocation.Split("platform", "proportional")])
    assert by_spend["research"]["shared"] == pytest.approx(750.0)
    assert by_spend["search"]["shared"] == pytest.approx(250.0)
    assert by_spend[UNALLOCATED]["shared"] == 0.0
    with pytest.raises(ValueError, match="add up to 100"):
        allocation.Split("platform", "fixed", percentages=(("research", 60.0),))


def test_showback_splits_a_shared_pool_and_keeps_the_total(assistant: Assistant) -> None:
    assign(assistant, owner="platform", service="AWS Data Transfer", override=True)
    with assistant.engine.begin() as connection:
        allocation.set_split(
            connection, allocation.Split("platform", "proportional"), by="t", at=NOW
        )
    answer = assistant.ask("showback last month", "x")
    assert answer.tool_calls[0]["name"] == "owner_showback"
    data = answer.reply.data
    want = expected_by_owner(
        [{"owner": "platform", "service": "AWS Data Transfer", "override": True}], *OCTOBER
    )
    pool = want.pop("platform")
    receivers = {k: v for k, v in want.items() if k != UNALLOCATED and v > 0}
    base = sum(receivers.values())
    for owner, amount in receivers.items():
        assert data["owners"][owner]["direct"] == pytest.approx(amount, abs=1e-5)
        assert data["owners"][owner]["total"] == pytest.approx(
            amount + pool * amount / base, abs=1e-5
        )
    assert data["owners"]["platform"]["total"] == pytest.approx(0.0, abs=1e-9)
    assert data["owners"][UNALLOCATED]["total"] == pytest.approx(want[UNALLOCATED], abs=1e-5)
    assert sum(f["total"] for f in data["owners"].values()) == pytest.approx(
        data["total"], abs=1e-6
    )
    assert data["total"] == pytest.approx(pool + sum(want.values()), abs=1e-6)
