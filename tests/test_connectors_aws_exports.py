"""The AWS Data Exports connector against moto S3: manifests, a restated period, CUR 2.0."""

from __future__ import annotations

import gzip
import io
import json
import time
from datetime import date, datetime

import pandas as pd
import pytest
from moto import mock_aws
from sqlalchemy import Engine, select

from storage.connectors import AwsExportConfig, ConnectorError, sync_source
from storage.demo import generate_demo_focus
from storage.models import cost_line_items, ingest_slices

NOW = datetime(2026, 11, 20, 6, 0)
BUCKET = "acme-billing-exports"
ROOT = "exports/focus-daily"
URI = f"s3://{BUCKET}/{ROOT}"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def csv_gz(frame: pd.DataFrame) -> bytes:
    return gzip.compress(frame.to_csv(index=False, na_rep="").encode())


def deliver(s3, period: str, execution: str, files: dict[str, bytes], root: str = ROOT) -> None:
    """Upload one export execution: its data files, then its manifest (as AWS does)."""
    uris = []
    for name, body in files.items():
        key = f"{root}/data/BILLING_PERIOD={period}/{execution}/{name}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        uris.append(f"s3://{BUCKET}/{key}")
    manifest = {
        "executionId": execution,
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:210987654321:export/focus-daily-1a2b",
        "columns": [{"name": "BilledCost", "type": "decimal"}],
        "dataFiles": uris,
        "billingPeriod": {"start": f"{period}-01T00:00:00.000Z"},
    }
    key = f"{root}/metadata/BILLING_PERIOD={period}/{execution}/focus-daily-Manifest.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())


@pytest.fixture
def delivered(s3) -> dict[str, pd.DataFrame]:
    """October (two Parquet parts, then restated) and November (CSV.gz) of the demo's AWS rows."""
    demo = generate_demo_focus(date(2026, 11, 19), days=50)
    aws = demo[demo["ProviderName"] == "AWS"].reset_index(drop=True)
    october = aws[aws["BillingPeriodStart"].str.startswith("2026-10")].reset_index(drop=True)
    november = aws[aws["BillingPeriodStart"].str.startswith("2026-11")].reset_index(drop=True)
    half = len(october) // 2
    deliver(
        s3,
        "2026-10",
        "exec-0001",
        {
            "part-00001.snappy.parquet": parquet(october[:half]),
            "part-00002.snappy.parquet": parquet(october[half:]),
        },
    )
    deliver(s3, "2026-11", "exec-0002", {"part-00001.csv.gz": csv_gz(november)})
    # A later restatement of October: one row's cost corrected, one row dropped. The old files
    # stay in the bucket, as they do with "create new" delivery.
    time.sleep(1.1)  # S3 listings time objects to the second
    restated = october.iloc[:-1].copy()
    restated.loc[0, ["BilledCost", "EffectiveCost"]] = [123.45, 123.45]
    deliver(s3, "2026-10", "exec-0003", {"part-00001.snappy.parquet": parquet(restated)})
    return {"2026-10": restated, "2026-11": november}


def totals(engine: Engine) -> dict[tuple[str, str], float]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                cost_line_items.c.billing_period_start,
                cost_line_items.c.billed_cost,
                cost_line_items.c.effective_cost,
            )
        ).all()
    found: dict[str, list] = {}
    for period, billed, effective in rows:
        entry = found.setdefault(f"{period:%Y-%m}", [0.0, 0.0, 0])
        entry[0] += float(billed)
        entry[1] += float(effective)
        entry[2] += 1
    return {
        (month, name): value
        for month, values in found.items()
        for name, value in zip(("billed", "effective", "rows"), values, strict=True)
    }


def expected(frames: dict[str, pd.DataFrame]) -> dict[tuple[str, str], float]:
    """Totals computed with pandas on the delivered files themselves."""
    found = {}
    for month, frame in frames.items():
        found[(month, "billed")] = float(frame["BilledCost"].astype(float).sum())
        found[(month, "effective")] = float(frame["EffectiveCost"].astype(float).sum())
        found[(month, "rows")] = len(frame)
    return found


def test_sync_reads_only_the_newest_delivery_of_each_period(delivered, engine: Engine):
    result = sync_source(engine, "aws-exports", AwsExportConfig(uri=URI), now=NOW)
    assert totals(engine) == pytest.approx(expected(delivered))
    assert result.report.rows == sum(len(frame) for frame in delivered.values())
    assert any("exec-0003" in note for note in result.notes)
    assert not any("exec-0001" in note for note in result.notes)
    with engine.connect() as connection:
        slices = connection.execute(select(ingest_slices)).all()
    assert {(s.provider_name, s.billing_account_id, s.source) for s in slices} == {
        ("AWS", "210987654321", f"aws data export {URI}")
    }


def test_resync_replaces_and_never_double_counts(delivered, sqlite_engine: Engine):
    config = AwsExportConfig(uri=URI)
    for _ in range(2):
        sync_source(sqlite_engine, "aws-exports", config, now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(delivered))


def test_missing_data_file_leaves_the_store_as_it_was(s3, delivered, sqlite_engine: Engine):
    config = AwsExportConfig(uri=URI)
    sync_source(sqlite_engine, "aws-exports", config, now=NOW)
    time.sleep(1.1)
    november = delivered["2026-11"].copy()
    november["BilledCost"] = november["BilledCost"].astype(float) * 2
    deliver(s3, "2026-11", "exec-0004", {"part-00001.csv.gz": csv_gz(november)})
    s3.delete_object(
        Bucket=BUCKET, Key=f"{ROOT}/data/BILLING_PERIOD=2026-11/exec-0004/part-00001.csv.gz"
    )
    with pytest.raises(ConnectorError, match="s3:GetObject"):
        sync_source(sqlite_engine, "aws-exports", config, now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(delivered))


def test_bad_uri_is_a_clear_error(sqlite_engine: Engine):
    with pytest.raises(Exception, match="not an S3 export location"):
        sync_source(sqlite_engine, "aws-exports", AwsExportConfig(uri="bucket/x"), now=NOW)


CUR_ROWS = [
    # type, unblended, SP effective, RI effective, SP commitment, SP used, tags
    ("Usage", 10.0, None, None, None, None, '{"user_team": "search"}'),
    ("SavingsPlanCoveredUsage", 32.77, 20.32, None, None, None, '{"user_team": "research"}'),
    ("SavingsPlanNegation", -32.77, None, None, None, None, None),
    ("SavingsPlanRecurringFee", 24.0, None, None, 24.0, 20.32, None),
    ("DiscountedUsage", 0.0, None, 5.5, None, None, None),
    ("Tax", 4.2, None, None, None, None, None),
    ("Credit", -3.0, None, None, None, None, None),
]


def test_legacy_cur2_export_is_mapped_to_focus(s3, sqlite_engine: Engine):
    frame = pd.DataFrame(
        [
            {
                "bill_payer_account_id": "210987654321",
                "bill_billing_period_start_date": "2026-11-01T00:00:00Z",
                "bill_billing_period_end_date": "2026-12-01T00:00:00Z",
                "line_item_usage_start_date": "2026-11-03T00:00:00Z",
                "line_item_usage_end_date": "2026-11-04T00:00:00Z",
                "line_item_usage_account_id": "314159265358",
                "line_item_currency_code": "USD",
                "line_item_product_code": "AmazonEC2",
                "line_item_usage_type": "BoxUsage:p4d.24xlarge",
                "line_item_line_item_type": kind,
                "line_item_unblended_cost": unblended,
                "savings_plan_savings_plan_effective_cost": sp_effective,
                "reservation_effective_cost": ri_effective,
                "savings_plan_total_commitment_to_date": commitment,
                "savings_plan_used_commitment": used,
                "resource_tags": tags,
            }
            for kind, unblended, sp_effective, ri_effective, commitment, used, tags in CUR_ROWS
        ]
    )
    deliver(s3, "2026-11", "cur-0001", {"cur-00001.csv.gz": csv_gz(frame)}, root="exports/cur2")
    sync_source(
        sqlite_engine, "aws-exports", AwsExportConfig(uri=f"s3://{BUCKET}/exports/cur2"), now=NOW
    )
    with sqlite_engine.connect() as connection:
        rows = connection.execute(select(cost_line_items)).all()
    billed = sum(unblended for _, unblended, *_ in CUR_ROWS)
    # Usage 10 + SP-covered 20.32 + unused commitment 3.68 + RI 5.5 + tax 4.2 - credit 3.
    assert sum(float(r.billed_cost) for r in rows) == pytest.approx(billed)
    assert sum(float(r.effective_cost) for r in rows) == pytest.approx(40.7)
    assert sorted(r.charge_category for r in rows) == sorted(
        ["Usage", "Usage", "Usage", "Purchase", "Usage", "Tax", "Credit"]
    )
    assert {r.gpu_instance_type for r in rows} == {"p4d.24xlarge"}
    assert {r.sub_account_id for r in rows} == {"314159265358"}
