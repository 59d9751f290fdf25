"""GCP and Azure FOCUS exports from folders: newest run per period, tag formats, bad files."""

from __future__ import annotations

import functools
import gzip
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bot.cli import app
from storage.connector_status import source_statuses
from storage.connectors import ConnectorError, FolderExportConfig, folder_exports, sync_source
from storage.demo import generate_demo_focus
from storage.models import cost_line_items, cost_tags, ingest_slices

NOW = datetime(2026, 11, 20, 6, 0)


@functools.cache
def _demo() -> pd.DataFrame:
    return generate_demo_focus(date(2026, 11, 19), days=50)


def demo_rows(provider: str) -> dict[str, pd.DataFrame]:
    """The demo's rows of one provider, split into October and November."""
    demo = _demo()
    rows = demo[demo["ProviderName"] == provider].drop(columns=["Id"]).reset_index(drop=True)
    return {
        month: rows[rows["BillingPeriodStart"].str.startswith(month)].reset_index(drop=True)
        for month in ("2026-10", "2026-11")
    }


def key_value_list(tags: str | None) -> list[dict[str, str]]:
    """GCP's form of a tag object: a list of key/value structs with the label's type."""
    return [
        {"key": key, "value": value, "x_type": "label"}
        for key, value in json.loads(tags or "{}").items()
    ]


def totals(engine: Engine) -> dict[tuple[str, str], float]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                cost_line_items.c.billing_period_start,
                func.sum(cost_line_items.c.billed_cost),
                func.sum(cost_line_items.c.effective_cost),
                func.count(),
            ).group_by(cost_line_items.c.billing_period_start)
        ).all()
    found = {}
    for period, billed, effective, count in rows:
        month = f"{period:%Y-%m}"
        found[(month, "billed")] = float(billed)
        found[(month, "effective")] = float(effective)
        found[(month, "rows")] = count
    return found


def expected(frames: dict[str, pd.DataFrame]) -> dict[tuple[str, str], float]:
    """Totals computed with pandas on the delivered rows themselves."""
    found = {}
    for month, frame in frames.items():
        found[(month, "billed")] = float(frame["BilledCost"].astype(float).sum())
        found[(month, "effective")] = float(frame["EffectiveCost"].astype(float).sum())
        found[(month, "rows")] = len(frame)
    return found


def team_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(cost_tags.c.value, func.count())
            .where(cost_tags.c.key == "team")
            .group_by(cost_tags.c.value)
        ).all()
    return dict(rows)


def expected_teams(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    teams = pd.concat(frames.values())["Tags"].map(lambda text: json.loads(text or "{}"))
    return teams.map(lambda tags: tags.get("team")).dropna().value_counts().to_dict()


# Google Cloud ---------------------------------------------------------------------------------


def gcp_parquet(frame: pd.DataFrame, path: Path) -> None:
    """The BigQuery EXPORT DATA shape: TIMESTAMP, NUMERIC and Tags as a list of structs."""
    out = frame.copy()
    for column in (
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
    ):
        out[column] = pd.to_datetime(out[column], utc=True)
    for column in ("BilledCost", "EffectiveCost"):
        out[column] = [Decimal(f"{value:.9f}") for value in out[column].astype(float)]
    out["Tags"] = out["Tags"].map(key_value_list)
    out["x_ExportTime"] = pd.Timestamp("2026-11-02T06:00:00Z")
    out["x_ServiceId"] = "6F81-5844-456A"
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(path, index=False)


def gcp_csv(frame: pd.DataFrame, path: Path, *, snake_case: bool = False) -> None:
    """A CSV export: Tags exported with TO_JSON_STRING, i.e. the key/value list as JSON text."""
    out = frame.copy()
    out["Tags"] = out["Tags"].map(lambda tags: json.dumps(key_value_list(tags)))
    out["x_ServiceId"] = "6F81-5844-456A"
    if snake_case:
        out.columns = [
            "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
            for name in out.columns
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = out.to_csv(index=False, na_rep="")
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())


@pytest.fixture
def gcp_folder(tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """October exported twice (the second run a restatement), November once, in snake case."""
    frames = demo_rows("Google Cloud")
    october, november = frames["2026-10"], frames["2026-11"]
    root = tmp_path / "gcs" / "focus"
    half = len(october) // 2
    first = root / "BillingPeriod=2026-10" / "20261102T060000"
    gcp_parquet(october[:half], first / "000000000000.parquet")
    gcp_parquet(october[half:], first / "000000000001.parquet")
    restated = october.iloc[1:].copy()
    restated.loc[1, ["BilledCost", "EffectiveCost"]] = [777.5, 700.25]
    gcp_csv(restated, root / "BillingPeriod=2026-10" / "20261105T060000" / "000000000000.csv.gz")
    gcp_csv(november, root / "BillingPeriod=2026-11" / "20261120T060000" / "0.csv", snake_case=True)
    # A period outside the synced months is not read.
    gcp_csv(october, root / "BillingPeriod=2026-08" / "20260902T060000" / "000000000000.csv")
    return root, {"2026-10": restated, "2026-11": november}


def test_gcp_sync_reads_the_newest_run_of_each_period(gcp_folder, engine: Engine):
    root, frames = gcp_folder
    result = sync_source(engine, "gcp-exports", FolderExportConfig("gcp", str(root)), now=NOW)
    assert totals(engine) == pytest.approx(expected(frames))
    assert team_counts(engine) == expected_teams(frames)
    assert result.report.rows == sum(len(frame) for frame in frames.values())
    assert any("20261105T060000" in note for note in result.notes)
    assert not any("20261102T060000" in note for note in result.notes)
    with engine.connect() as connection:
        slices = connection.execute(select(ingest_slices)).all()
    assert {(s.provider_name, s.billing_account_id, s.source) for s in slices} == {
        ("Google Cloud", "01A2B3-C4D5E6-F7A8B9", f"gcp focus export {root}")
    }


def test_gcp_parquet_run_with_key_value_tags(tmp_path: Path, sqlite_engine: Engine):
    frames = demo_rows("Google Cloud")
    gcp_parquet(frames["2026-11"], tmp_path / "2026-11" / "run-1" / "000000000000.parquet")
    sync_source(sqlite_engine, "gcp-exports", FolderExportConfig("gcp", str(tmp_path)), now=NOW)
    november = {"2026-11": frames["2026-11"]}
    assert totals(sqlite_engine) == pytest.approx(expected(november))
    assert team_counts(sqlite_engine) == expected_teams(november)


def test_gcp_resync_replaces_and_never_double_counts(gcp_folder, sqlite_engine: Engine):
    root, frames = gcp_folder
    for _ in range(2):
        sync_source(sqlite_engine, "gcp-exports", FolderExportConfig("gcp", str(root)), now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(frames))


def test_gcp_corrupt_file_midway_leaves_the_store_unchanged(gcp_folder, sqlite_engine: Engine):
    root, frames = gcp_folder
    config = FolderExportConfig("gcp", str(root))
    sync_source(sqlite_engine, "gcp-exports", config, now=NOW)
    late = root / "BillingPeriod=2026-11" / "20261121T060000"
    gcp_parquet(frames["2026-11"][:3], late / "000000000000.parquet")
    (late / "000000000001.parquet").write_bytes(b"PAR1 truncated by a failed copy")
    gcp_parquet(frames["2026-11"][3:], late / "000000000002.parquet")
    with pytest.raises(ConnectorError, match=r"000000000001\.parquet"):
        sync_source(sqlite_engine, "gcp-exports", config, now=datetime(2026, 11, 21, 6))
    assert totals(sqlite_engine) == pytest.approx(expected(frames))
    [status] = source_statuses(sqlite_engine)
    assert status.last_attempt_at == datetime(2026, 11, 21, 6)
    assert status.last_success_at == NOW
    assert status.rows == sum(len(frame) for frame in frames.values())
    assert "000000000001.parquet" in status.last_error


def test_bucket_url_asks_for_a_mount(sqlite_engine: Engine):
    with pytest.raises(Exception, match="gcsfuse"):
        sync_source(
            sqlite_engine, "gcp-exports", FolderExportConfig("gcp", "gs://billing/focus"), now=NOW
        )


# Azure ----------------------------------------------------------------------------------------

CONTAINER_EXPORT = "focus/acme-focus"


def azure_frame(frame: pd.DataFrame, *, braceless_tags: bool) -> pd.DataFrame:
    """Cost Management's FOCUS shape: x_ columns, Tags as object text (older: without braces)."""
    out = frame.copy()
    out["x_ResourceGroupName"] = "rg-ml"
    out["x_SkuMeterCategory"] = "Virtual Machines"
    out["x_BilledCostInUsd"] = out["BilledCost"]
    if braceless_tags:
        out["Tags"] = out["Tags"].map(lambda text: text[1:-1] if text else text)
    return out


def deliver_azure(
    container: Path,
    period: str,
    run_id: str,
    submitted: str,
    parts: dict[str, pd.DataFrame | bytes],
    *,
    dataset: str = "FocusCost",
) -> None:
    """One export run: its part files, then the manifest naming them (container-relative)."""
    start = date.fromisoformat(f"{period}-01")
    end = (pd.Timestamp(start) + pd.offsets.MonthEnd(1)).date()
    run_dir = f"{CONTAINER_EXPORT}/{start:%Y%m%d}-{end:%Y%m%d}/{run_id}"
    (container / run_dir).mkdir(parents=True, exist_ok=True)
    blobs = []
    for name, part in parts.items():
        path = container / run_dir / name
        if isinstance(part, bytes):
            path.write_bytes(part)
        elif name.endswith(".parquet"):
            part.to_parquet(path, index=False)
        else:
            path.write_bytes(gzip.compress(part.to_csv(index=False, na_rep="").encode()))
        blobs.append({"blobName": f"{run_dir}/{name}", "byteCount": path.stat().st_size})
    manifest = {
        "manifestVersion": "2024-04-01",
        "blobCount": len(blobs),
        "exportConfig": {
            "exportName": "acme-focus",
            "resourceId": "/providers/Microsoft.Billing/billingAccounts/1234567/providers/"
            "Microsoft.CostManagement/exports/acme-focus",
            "dataVersion": "1.0r2",
            "type": dataset,
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Csv",
            "compressionMode": "gzip",
            "rootFolderPath": "focus",
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id,
            "startDate": f"{start}T00:00:00",
            "endDate": f"{end}T00:00:00",
        },
        "blobs": blobs,
    }
    (container / run_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def azure_container(tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """October delivered, then restated by a later run; November in Parquet; a price sheet."""
    frames = demo_rows("Microsoft")
    october, november = frames["2026-10"], frames["2026-11"]
    container = tmp_path / "blob" / "billing"
    half = len(october) // 2
    deliver_azure(
        container,
        "2026-10",
        "0b6e4c1a-0001",
        "2026-11-02T07:55:02.4821441Z",
        {
            "part_0_0001.csv.gz": azure_frame(october[:half], braceless_tags=True),
            "part_1_0001.csv.gz": azure_frame(october[half:], braceless_tags=False),
        },
    )
    restated = october.iloc[:-2].copy()
    restated.loc[0, ["BilledCost", "EffectiveCost"]] = [432.1, 400.0]
    deliver_azure(
        container,
        "2026-10",
        "0b6e4c1a-0002",
        "2026-11-04T07:55:02.1Z",
        {"part_0_0001.csv.gz": azure_frame(restated, braceless_tags=True)},
    )
    deliver_azure(
        container,
        "2026-11",
        "0b6e4c1a-0003",
        "2026-11-20T05:10:00Z",
        {"part_0_0001.parquet": azure_frame(november, braceless_tags=False)},
    )
    deliver_azure(
        container,
        "2026-11",
        "price-0001",
        "2026-11-20T05:20:00Z",
        {"part_0_0001.csv.gz": b"not, a, focus, file\n"},
        dataset="PriceSheet",
    )
    return container, {"2026-10": restated, "2026-11": november}


def test_azure_sync_reads_the_newest_manifest_of_each_period(azure_container, engine: Engine):
    container, frames = azure_container
    config = FolderExportConfig("azure", str(container))
    result = sync_source(engine, "azure-exports", config, now=NOW)
    assert totals(engine) == pytest.approx(expected(frames))
    assert team_counts(engine) == expected_teams(frames)
    assert any("0b6e4c1a-0002" in note for note in result.notes)
    assert not any("0b6e4c1a-0001" in note or "price-0001" in note for note in result.notes)
    with engine.connect() as connection:
        gpu = connection.execute(
            select(func.count()).where(cost_line_items.c.is_gpu.is_(True))
        ).scalar_one()
    # Azure names the VM size (Standard_NC24ads_A100_v4, ...) in the charge description.
    delivered = pd.concat(frames.values())
    assert gpu == int(delivered["ChargeDescription"].str.startswith("Standard_N").sum()) > 0


def test_azure_resync_is_idempotent(azure_container, sqlite_engine: Engine):
    container, frames = azure_container
    config = FolderExportConfig("azure", str(container))
    for _ in range(2):
        sync_source(sqlite_engine, "azure-exports", config, now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(frames))


def test_azure_corrupt_part_leaves_the_store_unchanged(azure_container, sqlite_engine: Engine):
    container, frames = azure_container
    config = FolderExportConfig("azure", str(container))
    sync_source(sqlite_engine, "azure-exports", config, now=NOW)
    november = azure_frame(frames["2026-11"], braceless_tags=False)
    deliver_azure(
        container,
        "2026-11",
        "0b6e4c1a-0004",
        "2026-11-21T05:10:00Z",
        {
            "part_0_0001.csv.gz": november[:4],
            "part_0_0002.csv.gz": b"\x1f\x8b\x08 cut off mid-upload",
            "part_0_0003.csv.gz": november[4:],
        },
    )
    with pytest.raises(ConnectorError, match="part_0_0002"):
        sync_source(sqlite_engine, "azure-exports", config, now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(frames))


def test_azure_manifest_naming_a_missing_part_fails_cleanly(azure_container, sqlite_engine):
    container, frames = azure_container
    config = FolderExportConfig("azure", str(container))
    sync_source(sqlite_engine, "azure-exports", config, now=NOW)
    deliver_azure(
        container,
        "2026-11",
        "0b6e4c1a-0005",
        "2026-11-22T05:10:00Z",
        {"p.csv.gz": frames["2026-11"]},
    )
    next(container.rglob("0b6e4c1a-0005/p.csv.gz")).unlink()
    with pytest.raises(ConnectorError, match=r"p\.csv\.gz"):
        sync_source(sqlite_engine, "azure-exports", config, now=NOW)
    assert totals(sqlite_engine) == pytest.approx(expected(frames))


def test_cli_syncs_the_azure_folder_and_lists_the_new_sources(azure_container, tmp_path: Path):
    container, frames = azure_container
    env = {
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SPENDBOT_NOW": "2026-11-20T06:00:00",
        "SPENDBOT_AZURE_EXPORT_FOLDER": str(container),
    }
    runner = CliRunner()
    result = runner.invoke(app, ["sync", "azure-exports"], env=env)
    assert result.exit_code == 0, result.output
    rows = sum(len(frame) for frame in frames.values())
    assert f"azure-exports: {rows:,} rows for 2026-10, 2026-11" in result.output
    help_text = runner.invoke(app, ["sync", "--help"], env=env, terminal_width=200).output
    assert all(name in help_text for name in ("gcp-exports", "azure-exports", "onprem-gpus"))


def test_a_broken_mount_is_a_connector_error(gcp_folder, sqlite_engine, monkeypatch):
    root, _ = gcp_folder

    def disconnected(path, rows=0):
        raise OSError(107, "Transport endpoint is not connected")

    monkeypatch.setattr(folder_exports, "read_chunks", disconnected)
    with pytest.raises(ConnectorError, match=r"not connected.*gcsfuse"):
        sync_source(sqlite_engine, "gcp-exports", FolderExportConfig("gcp", str(root)), now=NOW)
    assert totals(sqlite_engine) == {}
    assert "not connected" in source_statuses(sqlite_engine)[0].last_error
