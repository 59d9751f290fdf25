"""The demo FOCUS generator: shape, determinism and the stories the data must tell."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from storage.demo import DEMO_TAG_KEYS, generate_demo_focus

END = date(2026, 11, 28)
DAYS = 120

# The project's copy of the FinOps Foundation FOCUS 1.0 sample export (see data/README.md).
SAMPLE_CSV = Path(__file__).parent / "data" / "focus_sample.csv"
MONEY = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"]


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return generate_demo_focus(END, DAYS)


def day_of(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["ChargePeriodStart"], format="%Y-%m-%d %H:%M:%S").dt.date


def usage(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["ChargeCategory"] == "Usage"]


def test_columns_are_the_focus_sample_header_in_order(demo):
    with SAMPLE_CSV.open(newline="") as sample:
        header = next(csv.reader(sample))
    assert len(header) == 44
    assert list(demo.columns) == header


def test_same_inputs_give_the_same_frame_and_another_seed_does_not():
    first = generate_demo_focus(END, DAYS, seed=7)
    pd.testing.assert_frame_equal(first, generate_demo_focus(END, DAYS, seed=7))
    other = generate_demo_focus(END, DAYS, seed=8)
    assert not first["EffectiveCost"].equals(other["EffectiveCost"])


def test_size_and_total_are_in_the_demo_range(demo):
    assert 3_000 <= len(demo) <= 8_000
    assert 250_000 <= demo["EffectiveCost"].sum() <= 600_000
    assert demo["Id"].is_unique


@pytest.mark.parametrize(
    ("end", "days"), [(END, DAYS), (date(2028, 3, 1), 45), (date(2026, 1, 31), 1)]
)
def test_charge_periods_cover_exactly_the_window(end, days):
    frame = generate_demo_focus(end, days)
    expected = {end - timedelta(days=i) for i in range(days)}
    assert set(day_of(frame)) == expected
    assert set(day_of(usage(frame))) == expected
    starts = pd.to_datetime(frame["ChargePeriodStart"])
    ends = pd.to_datetime(frame["ChargePeriodEnd"])
    assert ends.max() == pd.Timestamp(end + timedelta(days=1))
    daily = usage(frame)
    assert ((ends - starts)[daily.index] == pd.Timedelta(days=1)).all()
    month_start = starts.dt.to_period("M").dt.start_time
    assert (pd.to_datetime(frame["BillingPeriodStart"]) == month_start).all()
    assert (
        pd.to_datetime(frame["BillingPeriodEnd"]) == month_start + pd.DateOffset(months=1)
    ).all()
    stamp = r"^\d{4}-\d{2}-\d{2} 00:00:00$"
    for column in ["ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart"]:
        assert frame[column].str.match(stamp).all()


def test_every_provider_and_ai_service_is_present(demo):
    assert set(demo["ProviderName"]) == {"AWS", "Google Cloud", "Microsoft", "OpenAI", "Anthropic"}
    services = set(zip(demo["ProviderName"], demo["ServiceName"], strict=True))
    for expected in [
        ("AWS", "Amazon Elastic Compute Cloud"),
        ("AWS", "Amazon SageMaker"),
        ("AWS", "Amazon Bedrock"),
        ("AWS", "Amazon Simple Storage Service"),
        ("AWS", "AWS Data Transfer"),
        ("Google Cloud", "Compute Engine"),
        ("Google Cloud", "Vertex AI"),
        ("Google Cloud", "BigQuery"),
        ("Microsoft", "Virtual Machines"),
        ("Microsoft", "Azure Machine Learning"),
        ("OpenAI", "OpenAI API"),
        ("Anthropic", "Claude API"),
    ]:
        assert expected in services
    described = " ".join(demo["ChargeDescription"].dropna().unique())
    for instance in [
        "p4d.24xlarge",
        "p5.48xlarge",
        "g5.xlarge",
        "g5.12xlarge",
        "m6i.",
        "a2-highgpu-1g",
        "a2-highgpu-8g",
        "Standard_NC24ads_A100_v4",
        "Standard_ND96asr_v4",
    ]:
        assert instance in described
    models = set(demo.loc[demo["ProviderName"].isin(["OpenAI", "Anthropic"]), "SkuId"].dropna())
    assert models == {
        "gpt-4o",
        "gpt-4o-mini",
        "text-embedding-3-large",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    }
    tokens = usage(demo)[usage(demo)["ServiceCategory"] == "AI and Machine Learning"]
    assert set(
        tokens.loc[tokens["ProviderName"].isin(["OpenAI", "Anthropic"]), "ConsumedUnit"]
    ) == {"Tokens"}


def test_charge_categories(demo):
    counts = demo["ChargeCategory"].value_counts()
    assert set(counts.index) == {"Usage", "Tax", "Credit", "Purchase"}
    assert counts["Usage"] / len(demo) > 0.95
    credit = demo[demo["ChargeCategory"] == "Credit"]
    assert len(credit) == 1
    assert (credit["BilledCost"] < 0).all() and (credit["EffectiveCost"] < 0).all()
    tax = demo[demo["ChargeCategory"] == "Tax"]
    assert 0 < tax["BilledCost"].sum() < 0.05 * demo["BilledCost"].sum()


def test_api_spend_is_lower_on_weekends(demo):
    api = usage(demo)[usage(demo)["ProviderName"].isin(["OpenAI", "Anthropic"])]
    daily = api.groupby(day_of(api))["EffectiveCost"].sum()
    weekend = pd.Series([d.weekday() >= 5 for d in daily.index], index=daily.index)
    assert daily[~weekend].mean() > 1.5 * daily[weekend].mean()


def test_spend_grows_over_the_window(demo):
    api = usage(demo)[usage(demo)["ProviderName"].isin(["OpenAI", "Anthropic"])]
    daily = api.groupby(day_of(api))["EffectiveCost"].sum()
    first, last = daily.iloc[:28].median(), daily.iloc[-28:].median()
    assert 1.05 < last / first < 1.5


def test_idle_dev_gpu_runs_24_hours_every_day(demo):
    idle = demo[demo["ChargeDescription"].str.contains("g5.12xlarge", regex=False, na=False)]
    assert idle["ResourceId"].nunique() == 1
    assert idle["ResourceId"].iloc[0].startswith("i-0")
    assert sorted(day_of(idle)) == [END - timedelta(days=i) for i in reversed(range(DAYS))]
    assert (idle["ConsumedQuantity"] == 24).all()
    assert idle["EffectiveCost"].nunique() == 1
    assert {json.loads(tags)["env"] for tags in idle["Tags"]} == {"dev"}


def test_one_day_spike_on_gpt_4o(demo):
    gpt4o = usage(demo)[usage(demo)["SkuId"] == "gpt-4o"]
    daily = gpt4o.groupby(day_of(gpt4o))["EffectiveCost"].sum()
    assert daily.idxmax() == END - timedelta(days=9)
    assert daily.max() > 3 * daily.median()
    assert daily.drop(daily.idxmax()).max() < 2 * daily.median()


def test_level_shift_on_search_team_gpus(demo):
    rows = usage(demo)
    rows = rows[rows["ChargeDescription"].str.contains("p5.48xlarge", regex=False)]
    assert {json.loads(tags)["team"] for tags in rows["Tags"]} == {"search"}
    hours = rows.groupby(day_of(rows))["ConsumedQuantity"].sum()
    hours = hours.reindex([END - timedelta(days=i) for i in reversed(range(DAYS))], fill_value=0)
    shift = END - timedelta(days=17)
    after, before = hours[hours.index >= shift], hours[hours.index < shift]
    assert (after == 24).all()
    assert after.mean() > 2.5 * before.mean()


def test_tags_are_team_project_env_json_with_some_untagged_spend(demo):
    tagged = demo["Tags"].dropna()
    assert all(tuple(json.loads(tags)) == DEMO_TAG_KEYS for tags in tagged)
    teams = {json.loads(tags)["team"] for tags in tagged}
    assert {"research", "ml-platform", "search", "data"} <= teams
    share = demo.loc[demo["Tags"].isna(), "EffectiveCost"].sum() / demo["EffectiveCost"].sum()
    assert 0.05 <= share <= 0.25


def test_missing_text_values_are_none(demo):
    text = [column for column in demo.columns if demo[column].dtype == object]
    assert len(text) == 44 - 8
    for column in text:
        assert demo[column].map(lambda value: value is None or isinstance(value, str)).all()
    assert demo["ChargeClass"].isna().all()
    for column in MONEY:
        assert demo[column].notna().all()


def test_on_demand_usage_is_billed_as_it_costs(demo):
    on_demand = usage(demo)[usage(demo)["PricingCategory"] == "Standard"]
    assert len(on_demand) > 0.9 * len(usage(demo))
    assert (on_demand["BilledCost"] == on_demand["EffectiveCost"]).all()
    assert (on_demand["CommitmentDiscountId"].isna()).all()


def test_costs_are_ordered_list_contracted_effective(demo):
    assert (demo["ListCost"] >= demo["ContractedCost"] - 1e-9).all()
    assert (demo["ContractedCost"] >= demo["EffectiveCost"] - 1e-9).all()
    priced = usage(demo)
    assert (
        (priced["ListUnitPrice"] * priced["PricingQuantity"] - priced["ListCost"]).abs() < 1e-6
    ).all()


def test_savings_plan_is_amortized_into_the_covered_instance(demo):
    purchases = demo[demo["ChargeCategory"] == "Purchase"]
    assert len(purchases) == 4  # August to November
    assert (purchases["EffectiveCost"] == 0).all()
    assert (purchases["BilledCost"] > 0).all()
    covered = usage(demo)[usage(demo)["CommitmentDiscountId"].notna()]
    assert set(covered["CommitmentDiscountId"]) == set(purchases["CommitmentDiscountId"])
    assert (covered["PricingCategory"] == "Committed").all()
    assert (covered["BilledCost"] == 0).all()
    assert (covered["EffectiveCost"] < covered["ListCost"]).all()
    assert covered["ChargeDescription"].str.contains("p4d.24xlarge").all()
    assert covered["EffectiveCost"].sum() == pytest.approx(purchases["BilledCost"].sum())
