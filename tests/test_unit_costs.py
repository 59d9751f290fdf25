"""Unit costs: per 1M tokens, per GPU-hour and per loaded business unit, checked against pandas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.pipeline import Assistant
from storage.database import _alembic_config, open_database
from storage.demo import generate_demo_focus
from storage.gpu_counts import gpus_per_instance, instance_family
from storage.ingest import ingest_frame
from storage.models import Base
from storage.unit_costs import parse_metric_csv, replace_metrics
from tests.conftest import make_assistant

DEMO = generate_demo_focus(date(2026, 11, 28), days=120)
NOW = datetime(2026, 11, 29, 12)
DAY = DEMO.ChargePeriodStart.str[:10]
TEAM = DEMO.Tags.map(lambda tags: json.loads(tags).get("team") if isinstance(tags, str) else None)
LAST_30 = ("2026-10-30", "2026-11-28")
OCTOBER = ("2026-10-01", "2026-10-31")
# GPUs per instance type, from the providers' documentation, written out independently here.
GPUS = {
    "p4d.24xlarge": 8,
    "p5.48xlarge": 8,
    "g5.xlarge": 1,
    "g5.12xlarge": 4,
    "a2-highgpu-8g": 8,
    "a2-highgpu-1g": 1,
}


def usage(first: str, last: str) -> pd.DataFrame:
    """Usage rows charged from `first` to `last` inclusive."""
    return DEMO[(DEMO.ChargeCategory == "Usage") & DAY.between(first, last)]


def tokens(first: str, last: str) -> pd.DataFrame:
    frame = usage(first, last)
    return frame[frame.ConsumedUnit == "Tokens"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('units') / 'units.db'}"
    engine = open_database(url)
    ingest_frame(engine, DEMO, "demo")
    yield url, engine
    engine.dispose()


@pytest.fixture
def assistant(store: tuple[str, Engine]) -> Assistant:
    engine = store[1]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM unit_metrics"))
    return make_assistant(engine, NOW)


def test_a_million_tokens_of_one_model(assistant: Assistant) -> None:
    answer = assistant.ask("what does a million tokens of gpt-4o cost us?", "x")
    assert answer.tool_calls[0]["name"] == "unit_cost"
    frame = tokens(*LAST_30)
    frame = frame[frame.SkuId == "gpt-4o"]
    expected = frame.EffectiveCost.sum() / frame.ConsumedQuantity.sum() * 1e6
    (row,) = answer.reply.data["rows"]
    assert (row["provider"], row["group"]) == ("OpenAI", "gpt-4o")
    assert row["unit_cost"] == pytest.approx(expected)
    assert row["quantity"] == pytest.approx(frame.ConsumedQuantity.sum())
    assert f"${expected:,.2f}" in answer.reply.text
    assert "2026-10-30 to 2026-11-28" in answer.reply.context


def test_cost_per_1k_tokens_by_model_and_provider(assistant: Assistant) -> None:
    reply = assistant.ask("cost per 1K tokens by model last month", "x").reply
    frame = tokens(*OCTOBER)
    grouped = frame.groupby(["ProviderName", "SkuId"])[["EffectiveCost", "ConsumedQuantity"]].sum()
    expected = (grouped.EffectiveCost / grouped.ConsumedQuantity * 1000).to_dict()
    got = {(row["provider"], row["group"]): row["unit_cost"] for row in reply.data["rows"]}
    assert got == pytest.approx(expected)
    assert {provider for provider, _ in got} == {"OpenAI", "Anthropic", "AWS"}  # Bedrock is AWS
    assert reply.data["per"] == 1000
    # The SQL shown is the SQL that ran: executed as plain text it gives the same groups.
    with assistant.engine.connect() as connection:
        rows = connection.execute(text(reply.data["sql"])).all()
    assert {(row[0], row[1]): row.amount / row.quantity * 1000 for row in rows} == pytest.approx(
        expected
    )


def test_cost_per_gpu_hour_p4d_vs_a2(assistant: Assistant) -> None:
    answer = assistant.ask("cost per GPU hour on p4d vs a2", "x")
    assert answer.tool_calls[0]["input"]["families"] == ["p4d", "a2"]
    frame = usage(*LAST_30)

    def per_gpu_hour(*types: str) -> float:
        cost = gpu_hours = 0.0
        for itype in types:
            rows = frame[frame.ChargeDescription.str.contains(rf"(?:^|\s){itype}\s")]
            assert len(rows), itype
            cost += rows.EffectiveCost.sum()
            gpu_hours += rows.ConsumedQuantity.sum() * GPUS[itype]
        return cost / gpu_hours

    got = {row["group"]: row["unit_cost"] for row in answer.reply.data["rows"]}
    assert got == pytest.approx(
        {"p4d": per_gpu_hour("p4d.24xlarge"), "a2": per_gpu_hour("a2-highgpu-8g", "a2-highgpu-1g")}
    )


def test_every_gpu_family_when_none_is_named(assistant: Assistant) -> None:
    reply = assistant.ask("cost per GPU hour last month", "x").reply
    got = {row["group"]: row for row in reply.data["rows"]}
    assert {"p4d", "p5", "g5", "a2", "g2", "ND_v4", "NC_A100_v4", "NC_T4_v3"} <= set(got)
    frame = usage(*OCTOBER)
    g5 = frame[frame.ChargeDescription.str.contains(r"\bg5\.(?:xlarge|12xlarge|2xlarge)\b")]
    hours = g5.groupby(g5.ChargeDescription.str.extract(r"(g5\.\w+)")[0]).ConsumedQuantity.sum()
    expected_gpu_hours = hours["g5.xlarge"] + 4 * hours["g5.12xlarge"] + hours["g5.2xlarge"]
    assert got["g5"]["quantity"] == pytest.approx(expected_gpu_hours)
    assert got["g5"]["cost"] == pytest.approx(g5.EffectiveCost.sum())


@pytest.mark.parametrize(
    ("instance_type", "gpus", "family"),
    [
        ("p4d.24xlarge", 8, "p4d"),
        ("ml.g5.2xlarge", 1, "g5"),
        ("a2-highgpu-1g", 1, "a2"),
        ("a2-megagpu-16g", 16, "a2"),
        ("g2-standard-48", 4, "g2"),
        ("Standard_ND96asr_v4", 8, "ND_v4"),
        ("Standard_NC24ads_A100_v4", 1, "NC_A100_v4"),
        ("x9.mega", None, "x9"),
    ],
)
def test_gpu_counts_and_families(instance_type: str, gpus: int | None, family: str) -> None:
    assert gpus_per_instance(instance_type) == gpus
    assert instance_family(instance_type) == family


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("date,name,value\n" + "".join(f"{d},{n},{v}\n" for d, n, v in rows))
    return path


def _run_cli(url: str, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setenv("SPENDBOT_DATABASE_URL", url)
    monkeypatch.setenv("SPENDBOT_NOW", NOW.isoformat())
    from bot.cli import app

    return CliRunner().invoke(app, list(args))


def _october(value) -> list[tuple[str, str, str]]:
    return [
        (f"{day:%Y-%m-%d}", "inferences", str(value(day)))
        for day in (date(2026, 10, 1) + timedelta(days=i) for i in range(31))
    ]


def test_cost_per_1k_inferences_from_an_ingested_metric(
    assistant: Assistant, store: tuple[str, Engine], tmp_path: Path, monkeypatch
) -> None:
    url = store[0]
    first = _write(tmp_path / "m.csv", _october(lambda day: 100_000 + day.day))
    result = _run_cli(url, monkeypatch, "ingest-metric", str(first))
    assert result.exit_code == 0, result.output
    assert "Loaded 31 values of inferences" in result.output
    # Reloading replaces the same (name, date): only 31 rows, holding the new values.
    result = _run_cli(
        url,
        monkeypatch,
        "ingest-metric",
        str(_write(tmp_path / "n.csv", _october(lambda d: 1000 * d.day))),
    )
    assert result.exit_code == 0, result.output
    with assistant.engine.connect() as connection:
        count, total = connection.execute(
            text("SELECT count(*), sum(value) FROM unit_metrics WHERE name = 'inferences'")
        ).one()
    assert (count, total) == (31, 1000 * sum(range(1, 32)))

    reply = assistant.ask("cost per 1K inferences last month", "x").reply
    spend = DEMO[DAY.between(*OCTOBER)].EffectiveCost.sum()
    assert reply.data["unit_cost"] == pytest.approx(spend / (1000 * sum(range(1, 32))) * 1000)
    assert reply.data["metric_total"] == 1000 * sum(range(1, 32))
    scoped = assistant.ask("cost per 1K inferences for team search last month", "x").reply
    search = DEMO[DAY.between(*OCTOBER) & TEAM.eq("search")].EffectiveCost.sum()
    assert scoped.data["spend"] == pytest.approx(search)
    assert scoped.data["unit_cost"] == pytest.approx(search / (1000 * sum(range(1, 32))) * 1000)
    # A month with values on only some days says so.
    partial = assistant.ask("cost per 1K inferences in September", "x").reply
    assert "No inferences are recorded" in partial.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("2026-10-01,inferences,10\n2026-10-02,inferences,lots\n", "row 3, column value"),
        ("2026-10-01,inferences,10\n2026-13-02,inferences,5\n", "row 3, column date"),
        ("2026-10-01,,10\n", "row 2, column name"),
        ("2026-10-01,inferences,-4\n", "row 2, column value"),
        ("2026-10-01,inferences,1\n2026-10-01,Inferences,2\n", "row 3: Inferences on 2026-10-01"),
    ],
)
def test_bad_metric_rows_are_named_and_nothing_loads(
    assistant: Assistant, store: tuple[str, Engine], tmp_path: Path, monkeypatch, body, message
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,name,value\n" + body)
    result = _run_cli(store[0], monkeypatch, "ingest-metric", str(path))
    assert result.exit_code == 2
    assert message in result.output
    with assistant.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM unit_metrics")).scalar() == 0


def test_an_unknown_metric_is_a_user_error_with_a_hint(assistant: Assistant) -> None:
    reply = assistant.ask("cost per 1K inferences last month", "x").reply
    assert reply.is_error
    assert "ingest-metric" in reply.text


@given(
    value=st.floats(min_value=0, max_value=1e12, allow_nan=False),
    grouped=st.booleans(),
)
def test_metric_values_parse_as_written(value: float, grouped: bool) -> None:
    written = f"{value:,.4f}" if grouped else repr(value)
    (row,) = parse_metric_csv(f'date,name,value\n2026-10-01,requests,"{written}"\n')
    assert row.value == pytest.approx(float(written.replace(",", "")))


def test_the_migration_matches_the_models_and_downgrades(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diffs if "unit_metrics" in repr(d) or "budget_links" in repr(d)] == []
    config = _alembic_config(sqlite_engine)
    command.downgrade(config, "0009")
    with sqlite_engine.connect() as connection:
        names = set(sqlite_engine.dialect.get_table_names(connection))
    assert not {"unit_metrics", "budget_links"} & names
    assert "budgets" in names
    command.upgrade(config, "head")


@pytest.mark.postgres
def test_unit_costs_and_metrics_on_postgresql(postgres_url: str) -> None:
    engine = open_database(postgres_url)
    try:
        ingest_frame(engine, DEMO[DAY.between(*OCTOBER)], "demo")
        assistant = make_assistant(engine, NOW)
        reply = assistant.ask("cost per 1K tokens by model last month", "x").reply
        frame = tokens(*OCTOBER)
        grouped = frame.groupby(["ProviderName", "SkuId"])[
            ["EffectiveCost", "ConsumedQuantity"]
        ].sum()
        expected = (grouped.EffectiveCost / grouped.ConsumedQuantity * 1000).to_dict()
        got = {(row["provider"], row["group"]): row["unit_cost"] for row in reply.data["rows"]}
        assert got == pytest.approx(expected)
        gpu = assistant.ask("cost per GPU hour on p4d last month", "x").reply
        p4d = usage(*OCTOBER)
        p4d = p4d[p4d.ChargeDescription.str.contains("p4d.24xlarge", regex=False)]
        assert gpu.data["rows"][0]["unit_cost"] == pytest.approx(
            p4d.EffectiveCost.sum() / (p4d.ConsumedQuantity.sum() * GPUS["p4d.24xlarge"])
        )
        at = NOW
        replace_metrics(engine, parse_metric_csv("date,name,value\n2026-10-05,requests,7\n"), at)
        replace_metrics(engine, parse_metric_csv("date,name,value\n2026-10-05,requests,9\n"), at)
        metric = assistant.ask("cost per 1K requests last month", "x").reply
        assert metric.data["metric_total"] == 9
        spend = DEMO[DAY.between(*OCTOBER)].EffectiveCost.sum()
        assert metric.data["unit_cost"] == pytest.approx(spend / 9 * 1000)
    finally:
        engine.dispose()
