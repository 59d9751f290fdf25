"""The spend skill on both backends, checked against pandas sums over the real FOCUS sample."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from bot.pipeline import Assistant
from skills.catalog import load_skills
from storage.ingest import ingest_files
from tests.conftest import SAMPLE_CSV, make_assistant

NOW = datetime(2024, 10, 15, 12, 0)
SAMPLE = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).replace("NULL", None)
for money in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
    SAMPLE[money] = pd.to_numeric(SAMPLE[money])
SAMPLE["start"] = pd.to_datetime(SAMPLE["ChargePeriodStart"])
SAMPLE["region"] = SAMPLE["RegionId"].fillna(SAMPLE["RegionName"])
SAMPLE["tag_env"] = SAMPLE["Tags"].map(
    lambda tags: json.loads(tags).get("environment") if isinstance(tags, str) else None
)
SEPTEMBER = SAMPLE[(SAMPLE["start"] >= "2024-09-01") & (SAMPLE["start"] < "2024-10-01")]

SPEND = load_skills().get("spend_query")


@pytest.fixture
def assistant(engine: Engine) -> Assistant:
    ingest_files(engine, [SAMPLE_CSV])
    return make_assistant(engine, NOW)


def grouped(frame: pd.DataFrame, column: str, metric: str = "EffectiveCost") -> dict[str, float]:
    keys = frame[column].fillna("(none)")
    return frame.groupby(keys)[metric].sum().to_dict()


def run(assistant: Assistant, **args: object) -> dict:
    reply = assistant.execute(SPEND, {"period": "September 2024", **args}, "test:user")
    assert not reply.is_error, reply.text
    return reply.data


def rows_by_key(data: dict) -> dict[str, float]:
    return {"|".join(row["key"].values()): row["amount"] for row in data["rows"]}


@pytest.mark.parametrize("metric", ["effective", "billed", "list", "contracted"])
def test_totals_per_metric(assistant: Assistant, metric: str) -> None:
    column = {
        "effective": "EffectiveCost",
        "billed": "BilledCost",
        "list": "ListCost",
        "contracted": "ContractedCost",
    }[metric]
    data = run(assistant, metric=metric)
    assert data["total"] == pytest.approx(SEPTEMBER[column].sum(), abs=1e-6)
    assert data["metric_column"] == column.replace("Cost", "_cost").lower()


@pytest.mark.parametrize(
    ("dimension", "column"),
    [
        ("provider", "ProviderName"),
        ("service", "ServiceName"),
        ("service_category", "ServiceCategory"),
        ("sub_account", "SubAccountName"),
        ("region", "region"),
        ("resource", "ResourceId"),
        ("sku", "SkuId"),
        ("charge_category", "ChargeCategory"),
        ("environment", "tag_env"),
    ],
)
def test_group_by_each_dimension(assistant: Assistant, dimension: str, column: str) -> None:
    data = run(assistant, group_by=[dimension], top=100)
    expected = dict(sorted(grouped(SEPTEMBER, column).items(), key=lambda item: -item[1])[:100])
    got = rows_by_key(data)
    assert set(got) == set(expected)
    for key, amount in expected.items():
        assert got[key] == pytest.approx(amount, abs=1e-6), key
    assert sum(row["amount"] for row in data["rows"]) + data.get("others", {}).get(
        "amount", 0
    ) == pytest.approx(data["total"], abs=1e-6)


@pytest.mark.parametrize("unit", ["day", "week", "month"])
def test_group_by_time(assistant: Assistant, unit: str) -> None:
    starts = SEPTEMBER["start"]
    keys = {
        "day": starts.dt.strftime("%Y-%m-%d"),
        "week": (starts - pd.to_timedelta(starts.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d"),
        "month": starts.dt.strftime("%Y-%m"),
    }[unit]
    expected = SEPTEMBER.groupby(keys)["EffectiveCost"].sum().to_dict()
    data = run(assistant, group_by=[unit])
    got = rows_by_key(data)
    assert list(got) == sorted(expected)
    assert got == pytest.approx(expected, abs=1e-6)


def test_filters_aliases_and_exclusions(assistant: Assistant) -> None:
    ec2 = SEPTEMBER[SEPTEMBER["ServiceName"] == "Amazon Elastic Compute Cloud"]
    assert run(assistant, filters={"service": ["ec2"]})["total"] == pytest.approx(
        ec2["EffectiveCost"].sum(), abs=1e-6
    )
    not_aws = SEPTEMBER[SEPTEMBER["ProviderName"] != "AWS"]
    data = run(assistant, exclude={"provider": ["aws"]}, group_by=["provider"])
    assert data["total"] == pytest.approx(not_aws["EffectiveCost"].sum(), abs=1e-6)
    assert rows_by_key(data) == pytest.approx(grouped(not_aws, "ProviderName"), abs=1e-6)
    prod = SEPTEMBER[SEPTEMBER["tag_env"] == "prod"]
    assert run(assistant, filters={"environment": ["PROD"]})["total"] == pytest.approx(
        prod["EffectiveCost"].sum(), abs=1e-6
    )
    both = SEPTEMBER[SEPTEMBER["ProviderName"].isin(["Microsoft", "Oracle"])]
    assert run(assistant, filters={"provider": ["azure", "oci"]})["total"] == pytest.approx(
        both["EffectiveCost"].sum(), abs=1e-6
    )


def test_gpu_only(assistant: Assistant) -> None:
    gpu = SEPTEMBER[
        SEPTEMBER["ChargeDescription"]
        .fillna("")
        .str.contains(r"\b[gp]\d[a-z]*\.\d*x?large", regex=True)
    ]
    data = run(assistant, gpu_only=True, group_by=["instance_type"])
    assert data["total"] == pytest.approx(gpu["EffectiveCost"].sum(), abs=1e-6)
    assert data["line_items"] == len(gpu)


def test_compare_and_per_day(assistant: Assistant) -> None:
    week = SAMPLE[(SAMPLE["start"] >= "2024-09-16") & (SAMPLE["start"] < "2024-09-23")]
    before = SAMPLE[(SAMPLE["start"] >= "2024-09-09") & (SAMPLE["start"] < "2024-09-16")]
    data = run(
        assistant,
        period="2024-09-16 to 2024-09-22",
        compare=True,
        per_day=True,
        group_by=["service"],
    )
    assert data["total"] == pytest.approx(week["EffectiveCost"].sum(), abs=1e-6)
    assert data["previous"]["total"] == pytest.approx(before["EffectiveCost"].sum(), abs=1e-6)
    assert data["previous"]["start"] == "2024-09-09"
    assert data["per_day"] == pytest.approx(week["EffectiveCost"].sum() / 7, abs=1e-6)
    previous = grouped(before, "ServiceName")
    for row in data["rows"]:
        assert row["previous_amount"] == pytest.approx(
            previous.get(row["key"]["service"], 0.0), abs=1e-6
        )


def test_top_n_keeps_the_rest_as_others(assistant: Assistant) -> None:
    data = run(assistant, group_by=["service"], top=2)
    expected = sorted(grouped(SEPTEMBER, "ServiceName").values(), reverse=True)
    assert [row["amount"] for row in data["rows"]] == pytest.approx(expected[:2], abs=1e-6)
    assert data["others"]["groups"] == len(expected) - 2
    assert data["others"]["amount"] == pytest.approx(sum(expected[2:]), abs=1e-6)


def test_reported_sql_reproduces_the_figures(assistant: Assistant, engine: Engine) -> None:
    data = run(assistant, group_by=["provider"], filters={"environment": ["dev"]})
    with engine.connect() as connection:
        rows = connection.execute(text(data["sql"])).all()
    assert {row[0]: float(row[1]) for row in rows} == pytest.approx(rows_by_key(data), abs=1e-9)


def test_text_names_metric_period_filters_and_money(assistant: Assistant) -> None:
    reply = assistant.execute(
        SPEND,
        {"period": "September 2024", "metric": "billed", "filters": {"service": ["ec2"]}},
        "u",
    )
    ec2 = SEPTEMBER[SEPTEMBER["ServiceName"] == "Amazon Elastic Compute Cloud"]["BilledCost"].sum()
    assert ec2 > 1
    assert f"${ec2:,.2f}" in reply.text
    assert "BilledCost (invoiced)" in reply.context
    assert "2024-09-01 to 2024-09-30" in reply.context
    assert "service = Amazon Elastic Compute Cloud" in reply.context


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"group_by": ["colour"]}, "can't break spend down by 'colour'"),
        ({"filters": {"service": ["fooservice"]}}, "'fooservice' is not a known value of service"),
        ({"period": "next month"}, ""),
        ({"currency": "EUR"}, "No spend in EUR"),
        ({"top": 0}, "top"),
    ],
)
def test_bad_arguments_are_user_errors(assistant: Assistant, args: dict, message: str) -> None:
    reply = assistant.execute(SPEND, args, "u")
    assert reply.is_error
    assert message in reply.text
    assert "incident" not in reply.text


def test_empty_period_says_what_the_store_holds(assistant: Assistant) -> None:
    reply = assistant.execute(SPEND, {"period": "2024-06-01 to 2024-06-30"}, "u")
    assert "$0.00" in reply.text
    assert "1,000 line items from 2024-09-01 to 2024-09-30" in reply.text
