"""On-prem GPUs: agent samples become GPU-hours per day, host and model, priced as FOCUS rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from bot.settings import Settings
from storage.connectors import OnPremConfig, configured_sources, onprem_gpus, sync_source
from storage.connectors.onprem_gpus import DEFAULT_PRICES, load_price_table, price_for
from storage.models import cost_line_items, gpu_samples, ingest_slices

NOW = datetime(2026, 11, 20, 6, 0)
H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
PRICES = {"H100": 3.0, "A100": 1.5}

# (host, instance id, GPU index, model, sampled at)
SAMPLES = [
    # dgx-01, GPU 0 on Nov 10: 60 + 60 + 120 (a 28-minute silence, capped) + 60 + 120 (the newest
    # sample, capped) = 420 s.
    *(
        ("dgx-01", None, 0, H100, datetime(2026, 11, 10, 10, minute, 0))
        for minute in (0, 1, 2, 30, 31)
    ),
    # GPU 1: 30 + 120 = 150 s.
    ("dgx-01", None, 1, H100, datetime(2026, 11, 10, 10, 0, 0)),
    ("dgx-01", None, 1, H100, datetime(2026, 11, 10, 10, 0, 30)),
    # GPU 2 across the month end: 90 s on Oct 31, then 120 s on Nov 1.
    ("dgx-01", None, 2, H100, datetime(2026, 10, 31, 23, 59, 0)),
    ("dgx-01", None, 2, H100, datetime(2026, 11, 1, 0, 0, 30)),
    # A colocated host with an instance id, listed as on-prem in the config: 60 + 120 s.
    ("colo-7", "i-0colo7", 0, A100, datetime(2026, 11, 10, 12, 0, 0)),
    ("colo-7", "i-0colo7", 0, A100, datetime(2026, 11, 10, 12, 1, 0)),
    # A cloud VM (instance id, not listed): billed by its cloud, left out here.
    ("gpu-vm-3", "i-0cloud", 0, A100, datetime(2026, 11, 10, 12, 0, 0)),
    ("gpu-vm-3", "i-0cloud", 0, A100, datetime(2026, 11, 10, 12, 1, 0)),
    # A model missing from the price table: 60 + 120 s = 0.05 GPU-hours, reported, not priced.
    ("lab-3", None, 0, "Acme Accel 9000", datetime(2026, 11, 12, 9, 0, 0)),
    ("lab-3", None, 0, "Acme Accel 9000", datetime(2026, 11, 12, 9, 1, 0)),
    # Before the synced months: not read.
    ("dgx-01", None, 0, H100, datetime(2026, 9, 30, 12, 0, 0)),
]

# (day, host, model): (GPU-hours, cost), by hand from the comments above.
EXPECTED = {
    ("2026-10-31", "dgx-01", H100): (90 / 3600, 90 / 3600 * 3.0),
    ("2026-11-01", "dgx-01", H100): (120 / 3600, 120 / 3600 * 3.0),
    ("2026-11-10", "dgx-01", H100): (570 / 3600, 570 / 3600 * 3.0),
    ("2026-11-10", "colo-7", A100): (180 / 3600, 180 / 3600 * 1.5),
}


def add_samples(engine: Engine, samples) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(gpu_samples),
            [
                {
                    "host": host,
                    "instance_id": instance_id,
                    "gpu_index": index,
                    "gpu_model": model,
                    "sampled_at": at,
                    "utilization_pct": 50.0,
                    "process_count": 1,
                    "source": "nvml",
                }
                for host, instance_id, index, model, at in samples
            ],
        )


def stored(engine: Engine) -> dict[tuple[str, str, str], tuple[float, float]]:
    with engine.connect() as connection:
        rows = connection.execute(select(cost_line_items)).all()
    found = {}
    for row in rows:
        assert (row.provider_name, row.service_name, row.charge_category) == (
            "On-prem",
            "GPU Cluster",
            "Usage",
        )
        assert row.consumed_unit == "GPU-Hours"
        assert row.billed_cost == pytest.approx(row.effective_cost)
        key = (f"{row.charge_period_start:%Y-%m-%d}", row.resource_id, row.sku_id)
        found[key] = (float(row.consumed_quantity), float(row.effective_cost))
    return found


def assert_rows(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for key, (hours, cost) in expected.items():
        assert found[key] == pytest.approx((hours, cost))


CONFIG = OnPremConfig(prices=PRICES, hosts=("colo-7",), max_gap_seconds=120)


def test_samples_become_priced_gpu_hours(engine: Engine):
    add_samples(engine, SAMPLES)
    result = sync_source(engine, "onprem-gpus", CONFIG, now=NOW)
    assert_rows(stored(engine), EXPECTED)
    assert result.notes == [
        "no price for Acme Accel 9000: 0.05 GPU-hours left out (add it to the price table)"
    ]
    with engine.connect() as connection:
        slices = connection.execute(select(ingest_slices)).all()
    assert sorted((s.provider_name, f"{s.billing_period_start:%Y-%m}") for s in slices) == [
        ("On-prem", "2026-10"),
        ("On-prem", "2026-11"),
    ]


def test_resync_replaces_the_month_with_new_samples(sqlite_engine: Engine):
    add_samples(sqlite_engine, SAMPLES)
    sync_source(sqlite_engine, "onprem-gpus", CONFIG, now=NOW)
    sync_source(sqlite_engine, "onprem-gpus", CONFIG, now=NOW)
    assert_rows(stored(sqlite_engine), EXPECTED)
    # A later sample of dgx-01 GPU 1: its last sample now covers 60 s, the new one 120 s.
    add_samples(sqlite_engine, [("dgx-01", None, 1, H100, datetime(2026, 11, 10, 10, 1, 30))])
    sync_source(sqlite_engine, "onprem-gpus", CONFIG, now=NOW)
    hours = (570 - 120 + 60 + 120) / 3600
    assert stored(sqlite_engine)[("2026-11-10", "dgx-01", H100)] == pytest.approx(
        (hours, hours * 3.0)
    )


def test_price_tables_from_csv_and_yaml(tmp_path: Path):
    csv_table = tmp_path / "prices.csv"
    csv_table.write_text("gpu_model,price_per_gpu_hour\nH100,2.75\nA100 80GB,1.40\n*,0.5\n")
    yaml_table = tmp_path / "prices.yaml"
    yaml_table.write_text("H100: 2.75\nA100 80GB: 1.40\n")
    assert load_price_table(csv_table) == {"H100": 2.75, "A100 80GB": 1.4, "*": 0.5}
    assert load_price_table(yaml_table) == {"H100": 2.75, "A100 80GB": 1.4}
    prices = load_price_table(csv_table)
    assert price_for("NVIDIA A100 80GB PCIe", prices) == 1.4
    assert price_for("Tesla T4", prices) == 0.5
    # The longest matching key wins: an L40S is not priced as an L40 or an L4.
    assert price_for("NVIDIA L40S", DEFAULT_PRICES) == DEFAULT_PRICES["L40S"]
    assert price_for("NVIDIA L4", DEFAULT_PRICES) == DEFAULT_PRICES["L4"]
    assert price_for("Acme Accel 9000", DEFAULT_PRICES) is None


def test_settings_turn_the_source_on_with_a_price_table(tmp_path: Path):
    table = tmp_path / "prices.csv"
    table.write_text("gpu_model,price_per_gpu_hour\nH100,2.75\n")
    settings = Settings(
        onprem_gpus=True,
        onprem_gpu_price_table=str(table),
        onprem_gpu_hosts="colo-7, colo-8",
        gcp_export_folder="/mnt/gcs/focus",
    )
    sources = configured_sources(settings)
    assert sources["onprem-gpus"] == OnPremConfig(
        prices={"H100": 2.75}, hosts=("colo-7", "colo-8"), max_gap_seconds=120.0
    )
    assert sources["gcp-exports"].folder == "/mnt/gcs/focus"
    assert "azure-exports" not in sources


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5])
def test_streamed_chunks_give_the_same_hours(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
):
    add_samples(sqlite_engine, SAMPLES)
    monkeypatch.setattr(onprem_gpus, "CHUNK_ROWS", chunk_rows)
    sync_source(sqlite_engine, "onprem-gpus", CONFIG, now=NOW)
    assert_rows(stored(sqlite_engine), EXPECTED)


def test_no_samples_loads_nothing(sqlite_engine: Engine):
    result = sync_source(sqlite_engine, "onprem-gpus", CONFIG, now=NOW)
    assert result.report.rows == 0 and stored(sqlite_engine) == {}
