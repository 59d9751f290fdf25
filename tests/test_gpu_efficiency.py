"""Cost per allocated vs utilized GPU-hour from billing rows joined to GPU samples, by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage.connectors.base import focus_frame
from storage.gpu_telemetry import insert_samples
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.gpu_billing import usage_row

NOW = datetime(2026, 11, 29, 12, 0)
DAY = datetime(2026, 11, 20)


def usage(resource: str, instance_type: str, team: str, cost: float, hours: float) -> dict:
    description = f"${cost / hours:g} per On Demand Linux {instance_type} Instance Hour"
    return usage_row(resource, DAY, cost, hours, team=team, description=description)


def samples(instance: str, gpus: int, values: list[float]) -> list[dict]:
    return [
        {
            "host": instance,
            "instance_id": instance,
            "gpu_index": gpu,
            "sampled_at": DAY + timedelta(hours=hour),
            "utilization_pct": value,
            "process_count": 0,
            "source": "nvml",
        }
        for gpu in range(gpus)
        for hour, value in enumerate(values)
    ]


def test_cost_per_allocated_and_utilized_gpu_hour(engine: Engine) -> None:
    rows = [
        usage("i-a", "g5.xlarge", "search", 48.0, 48.0),
        usage("i-c", "g5.xlarge", "search", 24.0, 24.0),  # no telemetry
        usage("i-b", "p4d.24xlarge", "research", 786.54, 24.0),
    ]
    ingest_frame(engine, focus_frame(rows), "t")
    with engine.begin() as connection:
        insert_samples(connection, samples("i-a", 1, [40.0, 60.0]))
        insert_samples(connection, samples("i-b", 8, [10.0, 40.0]))
    reply = make_assistant(engine, NOW).ask("cost per utilized GPU-hour", "terminal:alice").reply
    assert not reply.is_error, reply.text
    groups = {(g["owner"], g["family"]): g for g in reply.data["groups"]}
    assert set(groups) == {("search", "g5"), ("research", "p4d")}
    g5, p4d = groups[("search", "g5")], groups[("research", "p4d")]
    # g5: 72 instance-hours of 1 GPU for $72; only i-a (48 h at a mean 50 %) was measured.
    assert (g5["machines"], g5["allocated_gpu_hours"], g5["utilized_gpu_hours"]) == (2, 72, 24)
    assert g5["per_allocated_gpu_hour"] == pytest.approx(1.0)
    assert g5["per_utilized_gpu_hour"] == pytest.approx(48.0 / 24)
    # p4d: 24 h x 8 GPUs = 192 GPU-hours at a mean 25 %.
    assert (p4d["allocated_gpu_hours"], p4d["utilized_gpu_hours"]) == (192, 48)
    assert p4d["per_allocated_gpu_hour"] == pytest.approx(786.54 / 192)
    assert p4d["per_utilized_gpu_hour"] == pytest.approx(786.54 / 48)
