"""Spend questions on FOCUS Parquet run by Spark SQL (local mode), against pandas."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from bot.pipeline import Assistant
from skills.catalog import load_skills
from tests.focus_engines import (
    QUESTIONS,
    ask,
    check_answer,
    engine_assistant,
    expected_frame,
    sql_amounts,
    write_focus_folder,
)

if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17 or later) on PATH", allow_module_level=True)
pytest.importorskip("pyspark", reason="pyspark is an optional dependency (spendbot[spark])")

SKILLS = load_skills()


# Small test queries spend more time compiling than running: interpret them, and JIT lightly.
QUICK_START = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
}


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    from storage.engines.spark_focus import local_session

    session = local_session(1, QUICK_START)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_assistant(tmp_path_factory: pytest.TempPathFactory, session: Any) -> Assistant:
    folder = tmp_path_factory.mktemp("focus")
    write_focus_folder(folder)
    # The engine finds the module's session (SparkSession.getOrCreate) and registers its views.
    return engine_assistant(tmp_path_factory.mktemp("state") / "bot.db", "spark", folder)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return expected_frame()


@pytest.mark.parametrize("name", QUESTIONS)
def test_spark_answers_like_pandas(
    name: str, spark_assistant: Assistant, frame: pd.DataFrame
) -> None:
    check_answer(ask(spark_assistant, QUESTIONS[name][0]), name, frame)


def test_shown_sql_is_spark_sql_that_runs(spark_assistant: Assistant) -> None:
    data = ask(spark_assistant, QUESTIONS["by_owner"][0])
    assert "TIMESTAMP '2024-09-01 00:00:00'" in data["sql"]
    amounts = sql_amounts(spark_assistant.cost_engine, data["sql"])
    got = {"|".join(row["key"].values()): row["amount"] for row in data["rows"]}
    assert amounts == pytest.approx(got, abs=1e-6)


def test_showback_on_spark_like_pandas(spark_assistant: Assistant, frame: pd.DataFrame) -> None:
    """Owners by the bot database's rule over Spark's views, as spend by owner counts them."""
    reply = spark_assistant.execute(
        SKILLS.get("owner_showback"), {"period": "September 2024"}, "test:user"
    )
    assert not reply.is_error, reply.text
    september = frame[(frame["start"] >= "2024-09-01") & (frame["start"] < "2024-10-01")]
    expected = september.groupby("owner")["EffectiveCost"].sum().to_dict()
    direct = {owner: figures["direct"] for owner, figures in reply.data["owners"].items()}
    assert direct == pytest.approx(expected, abs=1e-6)
