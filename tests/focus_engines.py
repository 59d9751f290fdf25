"""FOCUS Parquet for the cost-engine tests: the files, the store, the questions, pandas answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage.allocation import OWNER_TAG_KEYS, UNALLOCATED, add_rule
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.focus import GPU_INSTANCE_PATTERN
from storage.ingest import ingest_frame
from tests.conftest import SAMPLE_CSV

NOW = datetime(2024, 10, 15, 12)
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
NUMBERS = (*MONEY, "ConsumedQuantity", "ContractedUnitPrice", "ListUnitPrice", "PricingQuantity")
PERIODS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
RULE = {"service": "Amazon Elastic Compute Cloud", "resource": "arn:*"}
SPEND = load_skills().get("spend_query")


def sample_frame() -> pd.DataFrame:
    """The FinOps Foundation FOCUS sample, every cell as text (NULL cells as None)."""
    return pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).replace("NULL", None)


def demo_frame() -> pd.DataFrame:
    """Generated multi-provider FOCUS rows around September 2024."""
    return generate_demo_focus(date(2024, 10, 14), days=60)


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` typed as an export writes Parquet: numbers, microsecond timestamps, text."""
    frame = frame.copy()
    for column in frame.columns:
        if column in NUMBERS:
            frame[column] = pd.to_numeric(frame[column])
        elif column in PERIODS:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        else:
            frame[column] = frame[column].astype("string")
    return frame


def write_focus_folder(folder: Path) -> None:
    """The sample (FOCUS 1.0 names) and demo rows (1.2 names) as Parquet in nested folders."""
    (folder / "aws" / "2024-09").mkdir(parents=True)
    (folder / "multi").mkdir()
    typed(sample_frame()).to_parquet(folder / "aws" / "2024-09" / "part-0.parquet", index=False)
    renamed = typed(demo_frame()).rename(
        columns={"ProviderName": "ServiceProviderName", "PublisherName": "HostProviderName"}
    )
    renamed.to_parquet(folder / "multi" / "demo.parquet", index=False)


def _tags(text_value: object) -> dict[str, str]:
    """Tags as ingest keeps them: keys trimmed and lower-cased, the first of clashing keys."""
    if not isinstance(text_value, str):
        return {}
    kept: dict[str, str] = {}
    for key, value in json.loads(text_value).items():
        normalized = key.strip().lower()
        if normalized and normalized not in kept:
            kept[normalized] = "" if value is None else str(value)
    return kept


def expected_frame() -> pd.DataFrame:
    """Both frames with what the questions group by, computed with pandas alone."""
    frame = pd.concat([sample_frame(), demo_frame().astype(object)], ignore_index=True)
    for column in MONEY:
        frame[column] = pd.to_numeric(frame[column])
    frame["start"] = pd.to_datetime(frame["ChargePeriodStart"])
    frame["region"] = frame["RegionId"].fillna(frame["RegionName"])
    tags = frame["Tags"].map(_tags)
    frame["tag_team"] = tags.map(lambda found: found.get("team"))
    frame["tag_env"] = tags.map(lambda found: found.get("env"))

    def owner(row: pd.Series) -> str:
        found = row["tags"]
        native = next((found[key] for key in OWNER_TAG_KEYS if found.get(key)), None)
        if native:
            return native
        resources = [str(v).lower() for v in (row["ResourceId"], row["ResourceName"]) if v]
        if str(row["ServiceName"]).lower() == RULE["service"].lower() and any(
            fnmatchcase(resource, RULE["resource"]) for resource in resources
        ):
            return "platform"
        return UNALLOCATED

    frame["owner"] = frame.assign(tags=tags).apply(owner, axis=1)
    searched = ["ChargeDescription", "SkuId", "SkuPriceId", "ResourceType", "ResourceName"]
    frame["gpu"] = frame[searched].apply(
        lambda row: any(GPU_INSTANCE_PATTERN.search(str(v)) for v in row if v is not None), axis=1
    )
    return frame


def _september(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["start"] >= "2024-09-01") & (frame["start"] < "2024-10-01")]


def _by(column: str, metric: str = "EffectiveCost") -> Callable[[pd.DataFrame], dict]:
    def grouped(frame: pd.DataFrame) -> dict[str, float]:
        return frame.groupby(frame[column].fillna("(none)"))[metric].sum().to_dict()

    return grouped


def _day(frame: pd.DataFrame) -> dict[str, float]:
    return frame.groupby(frame["start"].dt.strftime("%Y-%m-%d"))["EffectiveCost"].sum().to_dict()


def _month(frame: pd.DataFrame) -> dict[str, float]:
    return frame.groupby(frame["start"].dt.strftime("%Y-%m"))["EffectiveCost"].sum().to_dict()


# name: (spend_query arguments, the rows the answer covers, their expected groups or None)
QUESTIONS: dict[str, tuple[dict[str, Any], Callable, Callable | None]] = {
    "total": ({}, _september, None),
    "billed": ({"metric": "billed"}, _september, None),
    "by_provider": ({"group_by": ["provider"], "top": 100}, _september, _by("ProviderName")),
    "top_5_services": ({"group_by": ["service"], "top": 5}, _september, _by("ServiceName")),
    "by_region": ({"group_by": ["region"], "top": 100}, _september, _by("region")),
    "daily": ({"group_by": ["day"]}, _september, _day),
    "monthly": (
        {"group_by": ["month"], "period": "from 2024-08-16 to 2024-10-14"},
        lambda f: f[(f["start"] >= "2024-08-16") & (f["start"] < "2024-10-15")],
        _month,
    ),
    "team_filter_by_provider": (
        {"filters": {"team": ["research"]}, "group_by": ["provider"], "top": 100},
        lambda f: _september(f)[_september(f)["tag_team"] == "research"],
        _by("ProviderName"),
    ),
    "by_env_tag": ({"group_by": ["tag:env"], "top": 100}, _september, _by("tag_env")),
    "by_owner": ({"group_by": ["owner"], "top": 100}, _september, _by("owner")),
    "gpu_billed": (
        {"gpu_only": True, "metric": "billed"},
        lambda f: _september(f)[_september(f)["gpu"]],
        None,
    ),
}


def ask(assistant: Assistant, args: dict[str, Any]) -> dict:
    """The spend skill's answer data for `args` (September 2024 unless a period is given)."""
    reply = assistant.execute(SPEND, {"period": "September 2024", **args}, "test:user")
    assert not reply.is_error, reply.text
    return reply.data


def check_answer(data: dict, name: str, frame: pd.DataFrame) -> None:
    """`data` answers question `name` as pandas does on `frame`, to 1e-6."""
    args, rows_of, groups_of = QUESTIONS[name]
    rows = rows_of(frame)
    metric = "BilledCost" if args.get("metric") == "billed" else "EffectiveCost"
    assert data["line_items"] == len(rows)
    assert data["total"] == pytest.approx(rows[metric].sum(), abs=1e-6)
    if groups_of is None:
        return
    expected = groups_of(rows.assign(EffectiveCost=rows[metric]))
    top = args.get("top")
    if top:
        expected = dict(sorted(expected.items(), key=lambda item: -item[1])[:top])
    got = {"|".join(row["key"].values()): row["amount"] for row in data["rows"]}
    assert got == pytest.approx(expected, abs=1e-6)
    if not top:
        assert list(got) == sorted(expected)


def sql_amounts(engine: Engine, sql: str) -> dict[str, float]:
    """Run an answer's shown SQL as plain text: group keys to amounts."""
    with engine.connect() as connection:
        rows = connection.execute(text(sql)).all()
    return {"|".join(str(cell) for cell in row[:-2]): float(row[-2]) for row in rows}


def state_database(path: Path) -> Engine:
    """A migrated, empty bot database holding the allocation rule the owner question uses."""
    engine = open_database(f"sqlite:///{path}")
    with engine.begin() as connection:
        add_rule(connection, owner="platform", criteria=RULE, by="test", at=NOW)
    return engine


def store_assistant(path: Path) -> Assistant:
    """The store (SQLite) with both frames ingested, as `spendbot ingest` loads them."""
    engine = state_database(path)
    ingest_frame(engine, sample_frame(), "sample.csv", now=NOW)
    ingest_frame(engine, demo_frame(), "demo.csv", now=NOW)
    return Assistant(Settings(database_url=str(engine.url), now=NOW), engine, load_skills())


def engine_assistant(path: Path, kind: str, folder: Path) -> Assistant:
    """An assistant whose cost questions run on `kind` over `folder`, its state in `path`."""
    engine = state_database(path)
    settings = Settings(
        database_url=str(engine.url), now=NOW, cost_engine=kind, focus_path=str(folder)
    )
    return Assistant(settings, engine, load_skills())
