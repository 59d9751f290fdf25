"""Ingestion of FOCUS files: the real sample, repeats, restatements, formats and bad files."""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from skills.errors import UserError
from storage.database import open_database
from storage.ingest import IngestError, ingest_files
from tests.conftest import SAMPLE_CSV

SAMPLE = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
SAMPLE_EFFECTIVE = pd.to_numeric(SAMPLE["EffectiveCost"]).sum()
SAMPLE_BILLED = pd.to_numeric(SAMPLE["BilledCost"]).sum()


def store_totals(engine: Engine) -> tuple[int, float, float]:
    with engine.connect() as connection:
        count, effective, billed = connection.execute(
            text("SELECT count(*), sum(effective_cost), sum(billed_cost) FROM cost_line_items")
        ).one()
    return int(count), float(effective or 0), float(billed or 0)


def test_real_sample_loads_and_matches_plain_sums(engine: Engine) -> None:
    report = ingest_files(engine, [SAMPLE_CSV])
    assert report.rows == 1000
    assert report.providers == {"AWS", "Microsoft", "Oracle"}
    count, effective, billed = store_totals(engine)
    assert count == 1000
    assert effective == pytest.approx(SAMPLE_EFFECTIVE, abs=1e-6)
    assert billed == pytest.approx(SAMPLE_BILLED, abs=1e-6)
    assert round(effective, 2) == 14.98 and round(billed, 2) == 20.52


def test_tags_are_queryable_and_nulls_are_null(engine: Engine) -> None:
    ingest_files(engine, [SAMPLE_CSV])
    tagged = SAMPLE[SAMPLE["Tags"] != "NULL"]
    expected_env = (
        tagged["Tags"].map(lambda t: pd.io.json.ujson_loads(t).get("environment")).value_counts()
    )
    with engine.connect() as connection:
        rows = dict(
            connection.execute(
                text(
                    "SELECT value, count(*) FROM cost_tags WHERE key = 'environment' GROUP BY value"
                )
            ).all()
        )
        null_types = connection.execute(
            text("SELECT count(*) FROM cost_line_items WHERE resource_type IS NULL")
        ).scalar()
    assert rows == expected_env.to_dict()
    assert null_types == (SAMPLE["ResourceType"] == "NULL").sum()


def test_loading_twice_replaces_instead_of_doubling(engine: Engine) -> None:
    ingest_files(engine, [SAMPLE_CSV])
    report = ingest_files(engine, [SAMPLE_CSV])
    assert report.replaced_slices == 4
    count, effective, _ = store_totals(engine)
    assert count == 1000
    assert effective == pytest.approx(SAMPLE_EFFECTIVE, abs=1e-6)


def test_restated_export_replaces_its_slice_only(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [SAMPLE_CSV])
    aws = SAMPLE[SAMPLE["ProviderName"] == "AWS"].head(10).copy()
    aws["EffectiveCost"] = "1.5"
    restated = tmp_path / "aws-restated.csv"
    aws.to_csv(restated, index=False)
    ingest_files(engine, [restated])
    others = SAMPLE[SAMPLE["ProviderName"] != "AWS"]
    count, effective, _ = store_totals(engine)
    assert count == len(others) + 10
    assert effective == pytest.approx(pd.to_numeric(others["EffectiveCost"]).sum() + 15.0, abs=1e-6)


def test_gzip_and_parquet_load_the_same(sqlite_engine: Engine, tmp_path: Path) -> None:
    gz = tmp_path / "sample.csv.gz"
    with SAMPLE_CSV.open("rb") as source, gzip.open(gz, "wb") as target:
        shutil.copyfileobj(source, target)
    ingest_files(sqlite_engine, [gz])
    assert store_totals(sqlite_engine)[0] == 1000
    parquet = tmp_path / "sample.parquet"
    typed = SAMPLE.replace("NULL", None)
    for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        typed[column] = pd.to_numeric(typed[column])
    for column in (
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingPeriodStart",
        "BillingPeriodEnd",
    ):
        typed[column] = pd.to_datetime(typed[column])
    typed.to_parquet(parquet)
    report = ingest_files(sqlite_engine, [parquet])
    assert report.replaced_slices == 4
    count, effective, _ = store_totals(sqlite_engine)
    assert count == 1000 and effective == pytest.approx(SAMPLE_EFFECTIVE, abs=1e-6)


def test_focus_1_2_column_names_and_odd_casing_are_accepted(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    renamed = SAMPLE.rename(
        columns={"ProviderName": "ServiceProviderName", "EffectiveCost": "effectivecost"}
    )
    path = tmp_path / "focus12.csv"
    renamed.to_csv(path, index=False)
    assert ingest_files(sqlite_engine, [path]).rows == 1000


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("BilledCost", "12,5x", "row 7, line 8, column BilledCost: not a number"),
        (
            "ChargePeriodStart",
            "2024-13-45",
            "row 7, line 8, column ChargePeriodStart: not an ISO 8601 date-time",
        ),
        ("EffectiveCost", "NULL", "row 7, line 8, column EffectiveCost: a value is required"),
        ("Tags", "{not json", "row 7, line 8, column Tags: not a JSON object"),
    ],
)
def test_bad_cells_name_file_line_column_and_change_nothing(
    engine: Engine, tmp_path: Path, column: str, value: str, message: str
) -> None:
    ingest_files(engine, [SAMPLE_CSV])
    before = store_totals(engine)
    bad = SAMPLE.copy()
    bad.loc[6, column] = value
    bad["BillingAccountId"] = "other-account"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(IngestError) as caught:
        ingest_files(engine, [SAMPLE_CSV, path])
    assert f"bad.csv: {message}" in str(caught.value)
    assert store_totals(engine) == before


def test_missing_required_column_is_named(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "nocost.csv"
    SAMPLE.drop(columns=["EffectiveCost", "ChargePeriodStart"]).to_csv(path, index=False)
    with pytest.raises(
        IngestError, match="missing required FOCUS column\\(s\\): ChargePeriodStart, EffectiveCost"
    ):
        ingest_files(sqlite_engine, [path])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("notes.txt", b"hello", "unsupported file type"),
        ("broken.parquet", b"PAR1garbage", "not a readable Parquet file"),
        ("broken.csv.gz", b"not gzip at all", "not a readable CSV file"),
    ],
)
def test_unreadable_files_fail_clearly(
    sqlite_engine: Engine, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        ingest_files(sqlite_engine, [path])
    assert store_totals(sqlite_engine)[0] == 0


def test_missing_file_is_reported(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        ingest_files(sqlite_engine, [tmp_path / "nope.csv"])


def test_gpu_instances_are_flagged(sqlite_engine: Engine) -> None:
    ingest_files(sqlite_engine, [SAMPLE_CSV])
    pattern = r"\b(?:p[2-6]|g[3-6])[a-z]*\.\d*x?large\b"
    text_columns = SAMPLE[
        ["ChargeDescription", "SkuId", "SkuPriceId", "ResourceType", "ResourceName"]
    ].agg(" ".join, axis=1)
    expected = int(text_columns.str.contains(pattern, regex=True).sum())
    with sqlite_engine.connect() as connection:
        flagged = connection.execute(
            text("SELECT count(*) FROM cost_line_items WHERE is_gpu")
        ).scalar()
    assert expected > 0 and flagged == expected


def test_progress_reports_every_byte(sqlite_engine: Engine) -> None:
    seen: list[int] = []
    ingest_files(sqlite_engine, [SAMPLE_CSV], progress=seen.append)
    assert sum(seen) == SAMPLE_CSV.stat().st_size


@settings(max_examples=40, deadline=None)
@given(
    cell=st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str), st.text(max_size=12)
    )
)
def test_any_cost_cell_loads_exactly_or_is_rejected_by_name(cell: str) -> None:
    frame = SAMPLE.head(3).copy()
    frame.loc[1, "BilledCost"] = cell
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.csv"
        frame.to_csv(path, index=False)
        engine = open_database(f"sqlite:///{folder}/cells.db")
        try:
            stripped = cell.strip()
            is_number = stripped not in ("", "NULL", "null") and _parses_as_float(stripped)
            if is_number:
                ingest_files(engine, [path])
                with engine.connect() as connection:
                    loaded = (
                        connection.execute(
                            text("SELECT billed_cost FROM cost_line_items ORDER BY id")
                        )
                        .scalars()
                        .all()
                    )
                assert loaded[1] == pytest.approx(float(stripped), rel=1e-9, abs=1e-9)
            else:
                with pytest.raises(
                    IngestError, match=re.escape("cells.csv: row 2, line 3, column BilledCost")
                ):
                    ingest_files(engine, [path])
        finally:
            engine.dispose()


def _parses_as_float(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return abs(number) != float("inf") and number == number
