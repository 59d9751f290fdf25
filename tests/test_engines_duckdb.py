"""Spend questions on FOCUS Parquet queried in place by DuckDB, against pandas and the store."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from bot.pipeline import Assistant
from storage.costs import SpendQuery, run_spend
from storage.engines import open_cost_engine
from storage.engines.duckdb_focus import open_duckdb_focus
from tests.focus_engines import (
    NOW,
    QUESTIONS,
    SPEND,
    ask,
    check_answer,
    demo_frame,
    engine_assistant,
    expected_frame,
    sample_frame,
    sql_amounts,
    store_assistant,
    typed,
    write_focus_folder,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return expected_frame()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("focus")
    write_focus_folder(folder)
    return folder


@pytest.fixture(scope="module")
def duckdb_assistant(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Assistant:
    return engine_assistant(tmp_path_factory.mktemp("state") / "bot.db", "duckdb", folder)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return store_assistant(tmp_path_factory.mktemp("store") / "store.db")


@pytest.mark.parametrize("name", QUESTIONS)
def test_duckdb_answers_like_pandas_and_the_store(
    name: str, duckdb_assistant: Assistant, store: Assistant, frame: pd.DataFrame
) -> None:
    args = QUESTIONS[name][0]
    on_duckdb = ask(duckdb_assistant, args)
    check_answer(on_duckdb, name, frame)
    on_store = ask(store, args)
    check_answer(on_store, name, frame)
    assert [row["key"] for row in on_duckdb["rows"]] == [row["key"] for row in on_store["rows"]]


@pytest.mark.parametrize("name", ["by_owner", "team_filter_by_provider", "daily"])
def test_shown_sql_runs_on_duckdb(name: str, duckdb_assistant: Assistant) -> None:
    data = ask(duckdb_assistant, QUESTIONS[name][0])
    assert "read_parquet" not in data["sql"]  # the store's table names, views on DuckDB
    amounts = sql_amounts(duckdb_assistant.cost_engine, data["sql"])
    for row in data["rows"]:
        assert amounts["|".join(row["key"].values())] == pytest.approx(row["amount"], abs=1e-6)


def test_state_stays_in_the_bot_database(duckdb_assistant: Assistant) -> None:
    assert duckdb_assistant.cost_engine is not None
    assert duckdb_assistant.cost_engine.dialect.name == "duckdb"
    assert duckdb_assistant.engine.dialect.name == "sqlite"
    context = duckdb_assistant.context("test:user")
    assert context.costs is duckdb_assistant.cost_engine


def test_text_cells_snake_case_names_and_new_files(tmp_path: Path) -> None:
    """Text cells under snake_case names (a CSV converted as is) read like ingest reads them."""
    frame = sample_frame()
    folder = tmp_path / "focus"
    folder.mkdir()
    padded = frame.assign(BilledCost=frame["BilledCost"].map(lambda v: f" {v} "))
    # 01:00 at UTC+2 on 1 September is still August in UTC.
    padded.loc[0, "ChargePeriodStart"] = "2024-09-01T01:00:00+02:00"
    snake = padded.rename(columns=lambda name: re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
    snake.to_parquet(folder / "a.parquet", index=False)
    engine = open_duckdb_focus(str(folder))
    september = SpendQuery(NOW.replace(month=9, day=1, hour=0), NOW.replace(day=1, hour=0))
    billed = pd.to_numeric(frame["BilledCost"]).iloc[1:].sum()
    (total,) = run_spend(engine, SpendQuery(september.start, september.end, metric="billed"))
    assert total.amount == pytest.approx(billed, abs=1e-6)
    assert total.line_items == len(frame) - 1
    (folder / "later").mkdir()
    snake.head(10).to_parquet(folder / "later" / "b.parquet", index=False)
    (total,) = run_spend(engine, SpendQuery(september.start, september.end, metric="billed"))
    assert total.line_items == len(frame) - 1 + 9


def test_unreadable_or_incomplete_folders_say_why(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read FOCUS Parquet"):
        open_duckdb_focus(str(tmp_path / "missing"))
    sample_frame().drop(columns=["BilledCost"]).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="BilledCost"):
        open_duckdb_focus(str(tmp_path))


def test_cost_engine_setting() -> None:
    assert open_cost_engine("store", None) is None
    with pytest.raises(ValueError, match="SPENDBOT_FOCUS_PATH"):
        open_cost_engine("duckdb", None)


def test_a_new_file_reaches_the_vocabulary(tmp_path: Path) -> None:
    """Known values reload when a file appears, as they do after an ingest."""
    folder = tmp_path / "focus"
    folder.mkdir()
    typed(sample_frame()).to_parquet(folder / "sample.parquet", index=False)
    assistant = engine_assistant(tmp_path / "bot.db", "duckdb", folder)
    openai = {"filters": {"provider": ["openai"]}}
    reply = assistant.execute(SPEND, {"period": "September 2024", **openai}, "test:user")
    assert reply.is_error and "not a known value" in reply.text
    demo = demo_frame()
    typed(demo).to_parquet(folder / "demo.parquet", index=False)
    starts = pd.to_datetime(demo["ChargePeriodStart"])
    september = demo[(starts >= "2024-09-01") & (starts < "2024-10-01")]
    expected = september.loc[september["ProviderName"] == "OpenAI", "EffectiveCost"].sum()
    assert ask(assistant, openai)["total"] == pytest.approx(expected, abs=1e-6)
