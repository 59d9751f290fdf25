"""Spend questions as people type them in chat, routed end to end and checked against pandas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from bot.pipeline import Answer, Assistant
from bot.render_text import render_plain
from skills.catalog import load_skills
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

END = date(2026, 11, 28)  # last day of demo data
DAYS = 120  # 2026-08-01 to 2026-11-28
NOW = datetime(2026, 11, 29, 12, 0)  # a Sunday, UTC
TODAY = NOW.date()
NONE = "(none)"  # how a missing group value is reported
TIME_UNITS = ("day", "week", "month")
DEFAULT_TOP = 10  # groups shown when no top N is asked for
COLUMN = {"effective": "EffectiveCost", "billed": "BilledCost", "list": "ListCost"}
# GPU machine families as a FinOps person would list them: AWS p4d/p5/g5 (SageMaker ml.g5 too),
# GCP a2-highgpu and g2-standard, Azure NC/ND/NV sizes. Matched on the charge description.
GPU_FAMILIES = r"\b(?:ml\.)?(?:p4d|p5|g5)\.\w+|\ba2-highgpu-\w+|\bg2-standard-\d+|\bStandard_N[CDV]"


def days(first: str, last: str) -> tuple[date, date]:
    return date.fromisoformat(first), date.fromisoformat(last)


def last_days(count: int) -> tuple[date, date]:
    """The `count` full days before today."""
    return TODAY - timedelta(days=count), TODAY - timedelta(days=1)


# Periods as of Sunday 2026-11-29, worked out on a calendar.
TODAY_ONLY = days("2026-11-29", "2026-11-29")
YESTERDAY = days("2026-11-28", "2026-11-28")
THIS_WEEK = days("2026-11-23", "2026-11-29")  # Monday to today
LAST_WEEK = days("2026-11-16", "2026-11-22")
THIS_MONTH = days("2026-11-01", "2026-11-29")
LAST_MONTH = days("2026-10-01", "2026-10-31")
THIS_QUARTER = days("2026-10-01", "2026-11-29")
Q3 = days("2026-07-01", "2026-09-30")
SEPTEMBER = days("2026-09-01", "2026-09-30")
AUGUST = days("2026-08-01", "2026-08-31")
# A to-date period compares with as many days at the start of the previous unit.
OCTOBER_1_TO_29 = days("2026-10-01", "2026-10-29")

AWS_EC2 = "Amazon Elastic Compute Cloud"


@dataclass(frozen=True)
class Ask:
    """A phrasing and the query it means, in dates and FOCUS values rather than bot arguments."""

    text: str
    period: tuple[date, date]
    metric: str = "effective"
    group_by: tuple[str, ...] = ()
    keep: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drop: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gpu: bool = False
    top: int | None = None
    previous: tuple[date, date] | None = None
    per_day: bool = False


def ask(case_id: str, text: str, period: tuple[date, date], **meaning) -> object:
    return pytest.param(Ask(text, period, **meaning), id=case_id)


PHRASINGS = [
    # Every time phrase
    ask("total-last-month", "what did we spend last month?", LAST_MONTH),
    ask("today-no-data-yet", "How much have we spent today?", TODAY_ONLY),
    ask("yesterday", "what did we spend yesterday", YESTERDAY),
    ask("this-week", "spend this week", THIS_WEEK),
    ask("last-week-possessive", "last week's spend", LAST_WEEK),
    ask("this-month-so-far", "spend this month so far", THIS_MONTH),
    ask("november-bare", "November spend", THIS_MONTH),
    ask("shouting", "SPEND BY PROVIDER LAST MONTH", LAST_MONTH, group_by=("provider",)),
    ask("this-quarter-gpu", "gpu cost this quarter", THIS_QUARTER, gpu=True),
    ask(
        "last-quarter-list-anthropic",
        "list cost of anthropic last quarter",
        Q3,
        metric="list",
        keep={"provider": ("Anthropic",)},
    ),
    ask(
        "q3-2026-azure-invoice",
        "azure invoice for Q3 2026",
        Q3,
        metric="billed",
        keep={"provider": ("Microsoft",)},
    ),
    ask(
        "in-september-gcp-bill",
        "gcp bill in September",
        SEPTEMBER,
        metric="billed",
        keep={"provider": ("Google Cloud",)},
    ),
    ask(
        "september-2026-by-region",
        "spend by region for September 2026",
        SEPTEMBER,
        group_by=("region",),
    ),
    ask(
        "sept-2026-paid-aws",
        "How much did we pay AWS in Sept 2026?",
        SEPTEMBER,
        keep={"provider": ("AWS",)},
    ),
    ask("last-30d", "spend last 30d", last_days(30)),
    ask("last-seven-days-in-words", "spend last seven days", last_days(7)),
    ask("past-week", "spend over the past week", last_days(7)),
    ask("last-2-weeks", "spend in the last 2 weeks", last_days(14)),
    ask("iso-day", "spend on 2026-10-15", days("2026-10-15", "2026-10-15")),
    ask(
        "iso-day-anthropic",
        "how much did anthropic cost us on 2026-11-20",
        days("2026-11-20", "2026-11-20"),
        keep={"provider": ("Anthropic",)},
    ),
    ask("iso-month", "spend in 2026-10", LAST_MONTH),
    ask(
        "since-iso-by-env",
        "spend by env since 2026-11-01",
        THIS_MONTH,
        group_by=("tag:env",),
    ),
    ask("since-month", "spend since October", days("2026-10-01", "2026-11-29")),
    ask(
        "since-month-day-bigquery",
        "bigquery costs since Nov 1",
        THIS_MONTH,
        keep={"service": ("BigQuery",)},
    ),
    ask(
        "from-to-monthly",
        "monthly spend from 2026-08-01 to 2026-10-31",
        days("2026-08-01", "2026-10-31"),
        group_by=("month",),
    ),
    ask(
        "from-month-day-to-month-day",
        "spend from September 1 to September 15",
        days("2026-09-01", "2026-09-15"),
    ),
    ask(
        "between-iso-dates",
        "Spend between 2026-09-01 and 2026-09-15?",
        days("2026-09-01", "2026-09-15"),
    ),
    ask(
        "last-3-months-by-month",
        "last 3 months spend by month",
        days("2026-08-01", "2026-10-31"),
        group_by=("month",),
    ),
    ask("ytd", "ytd spend", days("2026-01-01", "2026-11-29")),
    # Every breakdown
    ask("by-provider", "Spend by provider this month", THIS_MONTH, group_by=("provider",)),
    ask("per-cloud", "cost per cloud yesterday", YESTERDAY, group_by=("provider",)),
    ask("by-service", "spend october 2026 by service", LAST_MONTH, group_by=("service",)),
    ask(
        "by-service-category",
        "spend by service category this month",
        THIS_MONTH,
        group_by=("service_category",),
    ),
    ask(
        "for-each-category",
        "cost for each category last quarter",
        Q3,
        group_by=("service_category",),
    ),
    ask(
        "break-down-by-sub-account",
        "Break down last month's spend by sub account",
        LAST_MONTH,
        group_by=("sub_account",),
    ),
    ask("per-account", "spend per account last week", LAST_WEEK, group_by=("sub_account",)),
    ask(
        "ec2-by-resource",
        "ec2 spend by resource last 7 days",
        last_days(7),
        group_by=("resource",),
        keep={"service": (AWS_EC2,)},
    ),
    ask(
        "top-10-resources",
        "top 10 resources last 7 days",
        last_days(7),
        group_by=("resource",),
        top=10,
    ),
    ask(
        "top-3-skus-openai",
        "top 3 skus for openai last month",
        LAST_MONTH,
        group_by=("sku",),
        keep={"provider": ("OpenAI",)},
        top=3,
    ),
    ask(
        "anthropic-by-model",
        "anthropic spend by model in september",
        SEPTEMBER,
        group_by=("sku",),
        keep={"provider": ("Anthropic",)},
    ),
    ask(
        "by-charge-category",
        "spend by charge category in October",
        LAST_MONTH,
        group_by=("charge_category",),
    ),
    ask(
        "by-charge-type",
        "what did we pay by charge type last month",
        LAST_MONTH,
        group_by=("charge_category",),
    ),
    ask("by-team", "spend by team last month", LAST_MONTH, group_by=("tag:team",)),
    ask(
        "which-team-most",
        "Which team spent the most last month?",
        LAST_MONTH,
        group_by=("tag:team",),
        top=5,
    ),
    ask(
        "who-spent-most",
        "who spent the most this quarter",
        THIS_QUARTER,
        group_by=("tag:team",),
        top=5,
    ),
    ask("by-project", "cost by project this month", THIS_MONTH, group_by=("tag:project",)),
    ask(
        "team-by-project",
        "spend for ml-platform team by project last month",
        LAST_MONTH,
        group_by=("tag:project",),
        keep={"tag:team": ("ml-platform",)},
    ),
    ask("weekly", "weekly cost last month", LAST_MONTH, group_by=("week",)),
    ask(
        "per-week-since",
        "costs per week since 2026-09-01",
        days("2026-09-01", "2026-11-29"),
        group_by=("week",),
    ),
    ask("by-week-q3", "spend by week in Q3 2026", Q3, group_by=("week",)),
    ask(
        "daily-research",
        "daily spend for research last 14 days",
        last_days(14),
        group_by=("day",),
        keep={"tag:team": ("research",)},
    ),
    # Filters named by alias, tag value, region or key=value
    ask(
        "paid-for-ec2",
        "how much did we pay for EC2 last week?",
        LAST_WEEK,
        keep={"service": (AWS_EC2,)},
    ),
    ask(
        "s3-yesterday",
        "S3 cost yesterday",
        YESTERDAY,
        keep={"service": ("Amazon Simple Storage Service",)},
    ),
    ask(
        "gcp-and-azure",
        "GCP, Azure spend yesterday",
        YESTERDAY,
        keep={"provider": ("Google Cloud", "Microsoft")},
    ),
    ask(
        "billed-openai",
        "billed cost for openai this quarter",
        THIS_QUARTER,
        metric="billed",
        keep={"provider": ("OpenAI",)},
    ),
    ask(
        "openai-bill-mtd",
        "Bill for openai, month-to-date?",
        THIS_MONTH,
        metric="billed",
        keep={"provider": ("OpenAI",)},
    ),
    ask(
        "sagemaker",
        "sagemaker spend this month",
        THIS_MONTH,
        keep={"service": ("Amazon SageMaker",)},
    ),
    ask("bedrock", "bedrock cost last month", LAST_MONTH, keep={"service": ("Amazon Bedrock",)}),
    ask("bigquery", "BigQuery spend in October", LAST_MONTH, keep={"service": ("BigQuery",)}),
    ask("vertex", "vertex spend last 30 days", last_days(30), keep={"service": ("Vertex AI",)}),
    ask(
        "ec2-plus-s3",
        "EC2 + S3 spend last month",
        LAST_MONTH,
        keep={"service": (AWS_EC2, "Amazon Simple Storage Service")},
    ),
    ask(
        "compute-category",
        "compute spend last month",
        LAST_MONTH,
        keep={"service_category": ("Compute",)},
    ),
    ask(
        "search-team",
        "how much did the search team spend last week?",
        LAST_WEEK,
        keep={"tag:team": ("search",)},
    ),
    ask(
        "ml-platform",
        "ml-platform cost last week",
        LAST_WEEK,
        keep={"tag:team": ("ml-platform",)},
    ),
    ask(
        "data-team",
        "spend for the data team last month",
        LAST_MONTH,
        keep={"tag:team": ("data",)},
    ),
    ask(
        "prod-costing-us",
        "what's prod costing us this month",
        THIS_MONTH,
        keep={"tag:env": ("prod",)},
    ),
    ask("dev", "dev spend this month", THIS_MONTH, keep={"tag:env": ("dev",)}),
    ask(
        "region-upper-case",
        "Spend in US-EAST-1 yesterday",
        YESTERDAY,
        keep={"region": ("us-east-1",)},
    ),
    ask(
        "team-equals-research",
        "team=research spend last month",
        LAST_MONTH,
        keep={"tag:team": ("research",)},
    ),
    ask(
        "project-colon-value",
        "project:llm-pretrain cost last month",
        LAST_MONTH,
        keep={"tag:project": ("llm-pretrain",)},
    ),
    ask(
        "env-equals-staging",
        "env=staging spend this month",
        THIS_MONTH,
        keep={"tag:env": ("staging",)},
    ),
    # Exclusions
    ask(
        "excluding-aws",
        "spend last month excluding aws",
        LAST_MONTH,
        drop={"provider": ("AWS",)},
    ),
    ask(
        "except-openai",
        "Spend last month, except OpenAI",
        LAST_MONTH,
        drop={"provider": ("OpenAI",)},
    ),
    ask(
        "without-anthropic",
        "spend this month without anthropic",
        THIS_MONTH,
        drop={"provider": ("Anthropic",)},
    ),
    ask(
        "aws-not-counting-ec2",
        "aws spend last month not counting ec2",
        LAST_MONTH,
        keep={"provider": ("AWS",)},
        drop={"service": (AWS_EC2,)},
    ),
    ask(
        "excluding-env-dev",
        "spend excluding env=dev this month",
        THIS_MONTH,
        drop={"tag:env": ("dev",)},
    ),
    ask(
        "top-projects-excluding-research",
        "top 5 projects last month excluding research",
        LAST_MONTH,
        group_by=("tag:project",),
        drop={"tag:team": ("research",)},
        top=5,
    ),
    # Top N
    ask("top-3-teams", "top 3 teams this quarter", THIS_QUARTER, group_by=("tag:team",), top=3),
    ask(
        "most-expensive-services",
        "most expensive services this month",
        THIS_MONTH,
        group_by=("service",),
        top=5,
    ),
    ask("biggest-3-regions", "biggest 3 regions last quarter", Q3, group_by=("region",), top=3),
    ask(
        "top-after-comma",
        "spend by project last week, top 4",
        LAST_WEEK,
        group_by=("tag:project",),
        top=4,
    ),
    # Comparisons with the previous period
    ask(
        "this-month-vs-last",
        "how does this month compare to last month?",
        THIS_MONTH,
        previous=OCTOBER_1_TO_29,
    ),
    ask("this-week-vs-previous", "this week vs previous period", THIS_WEEK, previous=LAST_WEEK),
    ask(
        "quarter-to-date-vs-last",
        "spend this quarter compared to last quarter",
        THIS_QUARTER,
        previous=days("2026-07-01", "2026-08-29"),
    ),
    ask(
        "last-7-vs-previous-7",
        "last 7 days vs the previous 7 days",
        last_days(7),
        previous=days("2026-11-15", "2026-11-21"),
    ),
    ask(
        "yesterday-versus",
        "yesterday versus the day before",
        YESTERDAY,
        previous=days("2026-11-27", "2026-11-27"),
    ),
    ask(
        "last-month-vs-month-before",
        "how did last month compare with the month before",
        LAST_MONTH,
        previous=SEPTEMBER,
    ),
    ask(
        "september-vs-august",
        "september compared to august",
        SEPTEMBER,
        previous=AUGUST,
    ),
    ask(
        "q3-vs-q2-empty",
        "Q3 2026 vs previous period",
        Q3,
        previous=days("2026-04-01", "2026-06-30"),
    ),
    ask(
        "openai-growth",
        "openai spend growth this month",
        THIS_MONTH,
        keep={"provider": ("OpenAI",)},
        previous=OCTOBER_1_TO_29,
    ),
    ask(
        "by-provider-vs-previous",
        "spend by provider last month vs previous period",
        LAST_MONTH,
        group_by=("provider",),
        previous=SEPTEMBER,
    ),
    # Averages per day
    ask("average-per-day", "average per day last month", LAST_MONTH, per_day=True),
    ask(
        "sagemaker-per-day-on-average",
        "how much did sagemaker cost per day on average last month",
        LAST_MONTH,
        keep={"service": ("Amazon SageMaker",)},
        per_day=True,
    ),
    ask(
        "a-day-default-period",
        "how much do we spend a day on openai",
        last_days(30),
        keep={"provider": ("OpenAI",)},
        per_day=True,
    ),
    # GPU spend
    ask(
        "gpu-by-team-september",
        "GPU spend by team in September",
        SEPTEMBER,
        group_by=("tag:team",),
        gpu=True,
    ),
    ask(
        "gpu-by-team-last-month",
        "gpu spend by team last month",
        LAST_MONTH,
        group_by=("tag:team",),
        gpu=True,
    ),
    ask("gpus-cost-us", "what did the gpus cost us last week", LAST_WEEK, gpu=True),
    ask(
        "gpu-by-provider-90-days",
        "GPU spend last 90 days by provider",
        last_days(90),
        group_by=("provider",),
        gpu=True,
    ),
    # Harder phrasings: values after 'by', chained breakdowns, numbers before 'biggest'
    ask(
        "billed-by-provider",
        "how much were we invoiced by OpenAI last month",
        LAST_MONTH,
        metric="billed",
        keep={"provider": ("OpenAI",)},
    ),
    ask(
        "by-team-by-month",
        "spend by team by month since 2026-09-01",
        days("2026-09-01", "2026-11-29"),
        group_by=("tag:team", "month"),
    ),
    ask(
        "by-provider-and-team",
        "spend split by provider and team last week",
        LAST_WEEK,
        group_by=("provider", "tag:team"),
    ),
    ask(
        "by-day",
        "spend by day last week",
        LAST_WEEK,
        group_by=("day",),
    ),
    ask(
        "per-day",
        "spend per day last week",
        LAST_WEEK,
        group_by=("day",),
    ),
    ask(
        "number-before-biggest",
        "what were the 2 biggest providers in october",
        LAST_MONTH,
        group_by=("provider",),
        top=2,
    ),
    ask(
        "for-team-search",
        "spend last week for team search",
        LAST_WEEK,
        keep={"tag:team": ("search",)},
    ),
    ask(
        "averaged-per-day",
        "spend last month averaged per day",
        LAST_MONTH,
        per_day=True,
    ),
]


# Independent expectations ------------------------------------------------------------------


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per line item, with a column per dimension as the bot names them."""
    start = pd.to_datetime(frame["ChargePeriodStart"], utc=True).dt.tz_convert(None)
    tags = frame["Tags"].map(lambda text: json.loads(text) if isinstance(text, str) else {})
    monday = start.dt.normalize() - pd.to_timedelta(start.dt.day_of_week, unit="D")
    table = pd.DataFrame(
        {
            "date": start.dt.date,
            "provider": frame["ProviderName"],
            "service": frame["ServiceName"],
            "service_category": frame["ServiceCategory"],
            "sub_account": frame["SubAccountName"].where(
                frame["SubAccountName"].notna(), frame["SubAccountId"]
            ),
            "region": frame["RegionId"].where(frame["RegionId"].notna(), frame["RegionName"]),
            "resource": frame["ResourceId"],
            "sku": frame["SkuId"],
            "charge_category": frame["ChargeCategory"],
            "day": start.dt.strftime("%Y-%m-%d"),
            "week": monday.dt.strftime("%Y-%m-%d"),
            "month": start.dt.strftime("%Y-%m"),
            "gpu": frame["ChargeDescription"].fillna("").str.contains(GPU_FAMILIES, regex=True),
            "effective": frame["EffectiveCost"].astype(float),
            "billed": frame["BilledCost"].astype(float),
            "list": frame["ListCost"].astype(float),
        }
    )
    for key in ("team", "project", "env"):
        table[f"tag:{key}"] = tags.map(lambda found, key=key: found.get(key))
    return table


def selected(table: pd.DataFrame, meaning: Ask, period: tuple[date, date]) -> pd.DataFrame:
    first, last = period
    rows = table[(table["date"] >= first) & (table["date"] <= last)]
    for dimension, values in meaning.keep.items():
        rows = rows[rows[dimension].isin(values)]
    for dimension, values in meaning.drop.items():
        rows = rows[~rows[dimension].isin(values)]  # untagged rows stay: they are not excluded
    return rows[rows["gpu"]] if meaning.gpu else rows


def group_amounts(rows: pd.DataFrame, meaning: Ask) -> dict[tuple[str, ...], float]:
    keys = rows[list(meaning.group_by)].astype(object).where(rows[list(meaning.group_by)].notna())
    keyed = keys.fillna(NONE).assign(amount=rows[meaning.metric])
    sums = keyed.groupby(list(meaning.group_by))["amount"].sum()
    return {
        (key if isinstance(key, tuple) else (key,)): float(amount) for key, amount in sums.items()
    }


def money(amount: float) -> str:
    return f"{'-' if round(amount, 2) < 0 else ''}${abs(amount):,.2f}"


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_frame() -> pd.DataFrame:
    return generate_demo_focus(END, DAYS, seed=7)


@pytest.fixture(scope="module")
def table(demo_frame: pd.DataFrame) -> pd.DataFrame:
    return prepare(demo_frame)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory, demo_frame: pd.DataFrame) -> str:
    """One SQLite store with the demo data, built once for the module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('phrasings') / 'spendbot.db'}"
    engine = open_database(url)
    ingest_frame(engine, demo_frame, "demo data", now=NOW)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def assistant(store_url: str) -> Iterator[Assistant]:
    """An assistant over the shared store whose clock reads NOW."""
    engine = open_database(store_url)
    yield make_assistant(engine, NOW)
    engine.dispose()


@pytest.fixture
def own_assistant(store_url: str) -> Iterator[Assistant]:
    """An assistant on a new engine, so no statement compiled for another test is reused.

    Time breakdowns need it: the first day/week/month bucket an engine compiles sticks (see
    test_time_breakdown_unit_does_not_stick_from_an_earlier_question).
    """
    engine = open_database(store_url)
    yield make_assistant(engine, NOW)
    engine.dispose()


# The phrasings -------------------------------------------------------------------------------


def answer_to(assistant: Assistant, text: str) -> Answer:
    answer = assistant.ask(text, "U123")
    assert not answer.reply.is_error, answer.reply.text
    assert [call["name"] for call in answer.tool_calls] == ["spend_query"]
    return answer


def check_rows(data: dict, meaning: Ask, expected: dict[tuple[str, ...], float]) -> None:
    assert data["group_by"] == list(meaning.group_by)
    shown = [(tuple(row["key"][name] for name in meaning.group_by), row) for row in data["rows"]]
    if meaning.group_by[0] in TIME_UNITS and meaning.top is None:
        # Time breakdowns come whole, in date order.
        assert [key for key, _ in shown] == sorted(expected)
        for key, row in shown:
            assert row["amount"] == pytest.approx(expected[key], abs=0.01), key
        return
    # Largest groups first; a tie may fall either way, so each shown key is checked on its own.
    limit = meaning.top or DEFAULT_TOP
    ranked = sorted(expected.values(), reverse=True)
    assert [row["amount"] for _, row in shown] == pytest.approx(ranked[:limit], abs=0.01)
    for key, row in shown:
        assert key in expected, key
        assert row["amount"] == pytest.approx(expected[key], abs=0.01), key
    rest = sum(ranked[limit:])
    if len(ranked) > limit:
        assert data["others"]["groups"] == len(ranked) - limit
        assert data["others"]["amount"] == pytest.approx(rest, abs=0.01)
    else:
        assert "others" not in data


@pytest.mark.parametrize("meaning", PHRASINGS)
def test_phrasing_answers_with_independently_computed_figures(
    request: pytest.FixtureRequest, table: pd.DataFrame, meaning: Ask
) -> None:
    by_time = any(name in TIME_UNITS for name in meaning.group_by)
    answer = answer_to(
        request.getfixturevalue("own_assistant" if by_time else "assistant"), meaning.text
    )
    data = answer.reply.data
    first, last = meaning.period

    assert data["metric"] == meaning.metric
    assert data["period"]["start"] == first.isoformat()
    assert data["period"]["end"] == last.isoformat()
    assert data["gpu_only"] is meaning.gpu
    wanted = {(name, False): sorted(values) for name, values in meaning.keep.items()}
    wanted |= {(name, True): sorted(values) for name, values in meaning.drop.items()}
    reported = {(f["dimension"], f["exclude"]): sorted(f["values"]) for f in data["filters"]}
    assert reported == wanted

    rows = selected(table, meaning, meaning.period)
    total = float(rows[meaning.metric].sum())
    assert data["total"] == pytest.approx(total, abs=0.01)
    assert data["line_items"] == len(rows)

    if meaning.group_by:
        check_rows(data, meaning, group_amounts(rows, meaning))
    else:
        assert data["group_by"] == []
        assert data["rows"] == []

    if meaning.previous:
        before_first, before_last = meaning.previous
        before = selected(table, meaning, meaning.previous)
        assert data["previous"]["start"] == before_first.isoformat()
        assert data["previous"]["end"] == before_last.isoformat()
        assert data["previous"]["total"] == pytest.approx(
            float(before[meaning.metric].sum()), abs=0.01
        )
        if meaning.group_by:
            earlier = group_amounts(before, meaning)
            for row in data["rows"]:
                key = tuple(row["key"][name] for name in meaning.group_by)
                assert row["previous_amount"] == pytest.approx(earlier.get(key, 0.0), abs=0.01)
    else:
        assert "previous" not in data

    count = (last - first).days + 1
    if meaning.per_day:
        assert data["per_day"] == pytest.approx(total / count, abs=0.01)
        assert f"Average {money(total / count)} per day over {count} days" in answer.reply.text
    else:
        assert "per_day" not in data

    shown = render_plain(answer.reply)
    assert money(total) in answer.reply.text
    assert f"Metric: {COLUMN[meaning.metric]}" in shown
    assert f"Period: {first.isoformat()} to {last.isoformat()}" in shown


def test_there_are_enough_varied_phrasings() -> None:
    texts = [param.values[0].text.lower() for param in PHRASINGS]
    assert len(texts) >= 60
    assert len(set(texts)) == len(texts)


def test_gpu_families_flag_every_accelerator_machine_and_nothing_else(
    demo_frame: pd.DataFrame, table: pd.DataFrame
) -> None:
    # Guards the expectation helper itself: the demo's only hourly machines without an
    # accelerator are m6i instances, and nothing billed by the token, GB or fee is a GPU.
    hourly = demo_frame["ChargeCategory"].eq("Usage") & demo_frame["PricingUnit"].eq("Hours")
    general = demo_frame["ChargeDescription"].str.contains(r"\bm6i\.", regex=True)
    assert table.loc[hourly, "gpu"].eq(~general[hourly]).all()
    assert not table.loc[~hourly, "gpu"].any()
    assert table["gpu"].sum() > 1000


# Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["asdf qwerty zxcv", "ok thanks", "hello there :wave:"],
    ids=["keyboard", "thanks", "hi"],
)
def test_gibberish_gets_the_list_of_examples(assistant: Assistant, text: str) -> None:
    answer = assistant.ask(text, "U123")
    assert answer.reply.is_error
    assert answer.tool_calls == []
    assert "didn't understand" in answer.reply.text
    spend = load_skills().get("spend_query")
    assert spend is not None
    assert spend.examples[0] in answer.reply.text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("spend on fooservice", "fooservice", id="unknown-service"),
        pytest.param("how much did we spend on foo-bar last month", "foo-bar", id="unknown-dashed"),
        pytest.param("spend by colour", "colour", id="unknown-group-by"),
        pytest.param("cost per flavour last week", "flavour", id="unknown-per"),
    ],
)
def test_unknown_word_is_named_in_the_error(assistant: Assistant, text: str, named: str) -> None:
    answer = assistant.ask(text, "U123")
    assert answer.reply.is_error
    assert answer.tool_calls == []
    assert f"'{named}'" in answer.reply.text
    assert "Hint:" in answer.reply.text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("spend in December 2026", id="next-month-by-name"),
        pytest.param("spend since 2026-12-01", id="since-future-day"),
        pytest.param("how much did we spend on 2026-11-30?", id="tomorrow-iso"),
        pytest.param(
            "spend next month",
            id="next-month",
        ),
        pytest.param(
            "spend in 2027",
            id="next-year",
        ),
    ],
)
def test_future_period_is_refused(assistant: Assistant, text: str) -> None:
    answer = assistant.ask(text, "U123")
    assert answer.reply.is_error, answer.reply.text
    assert answer.tool_calls == []
    assert "future" in answer.reply.text
    assert TODAY.isoformat() in answer.reply.text


def test_time_breakdown_unit_does_not_stick_from_an_earlier_question(
    own_assistant: Assistant, table: pd.DataFrame
) -> None:
    answer_to(own_assistant, "monthly spend last quarter")
    data = answer_to(own_assistant, "weekly cost last month").reply.data
    weeks = sorted(set(table.loc[table["month"] == "2026-10", "week"]))
    assert [row["key"]["week"] for row in data["rows"]] == weeks


def test_today_has_no_line_items_yet_and_says_what_the_store_holds(assistant: Assistant) -> None:
    # The demo data ends yesterday, so today's question matches nothing and the reply says so.
    answer = answer_to(assistant, "spend today")
    assert answer.reply.data["line_items"] == 0
    assert "No line items match" in answer.reply.text
    assert "from 2026-08-01 to 2026-11-28" in answer.reply.text
