"""Demo GPU telemetry: the last hours of two on-premises DGX hosts, one training, one idle.

It is what `spendbot agent` would have pushed, so "which GPUs are idle?" has something to show
on the demo data. The samples end at the moment they are generated; the idle policy counts
telemetry older than its staleness limit as busy, so they describe the present only right
after ``spendbot demo-data``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storage import gpu_telemetry

GPU_MODEL = "NVIDIA A100-SXM4-80GB"
GPUS_PER_HOST = 8
MEMORY_MB = 81_920.0
SAMPLE_EVERY = timedelta(minutes=1)
HISTORY = timedelta(hours=3)
BUSY_HOST = "dgx-train-01"
IDLE_HOST = "dgx-train-02"
IDLE_FOR = timedelta(minutes=150)
"""The idle host's training finished this long before the samples end."""


def _sample(host: str, index: int, at: datetime, busy: bool) -> dict[str, Any]:
    processes = [{"pid": 4100 + index, "name": "python train.py", "used_memory_mb": 61_440}]
    return {
        "host": host,
        "instance_id": None,
        "provider": None,
        "gpu_index": index,
        "gpu_uuid": f"GPU-{host}-{index}",
        "gpu_model": GPU_MODEL,
        "sampled_at": at,
        # A steady spread across GPUs and minutes, so the evidence does not look synthetic.
        "utilization_pct": float(88 + (index * 7 + at.minute) % 11) if busy else 0.0,
        "memory_used_mb": 62_000.0 if busy else 0.0,
        "memory_total_mb": MEMORY_MB,
        "power_w": 310.0 + index if busy else 61.0,
        "temperature_c": 66.0 if busy else 34.0,
        "process_count": 1 if busy else 0,
        "processes_json": json.dumps(processes) if busy else "[]",
        "source": "nvml",
    }


def demo_gpu_samples(now: datetime) -> list[dict[str, Any]]:
    """Per-minute samples of every GPU on both hosts for the `HISTORY` before `now` (naive UTC)."""
    end = now.replace(second=0, microsecond=0)
    times = [end - SAMPLE_EVERY * step for step in range(int(HISTORY / SAMPLE_EVERY), -1, -1)]
    return [
        _sample(host, index, at, busy=host == BUSY_HOST or at < end - IDLE_FOR)
        for host in (BUSY_HOST, IDLE_HOST)
        for index in range(GPUS_PER_HOST)
        for at in times
    ]


def load_demo_gpu_samples(engine: Engine, now: datetime) -> int:
    """Store the demo samples, replacing earlier demo samples of the same hosts; how many."""
    rows = demo_gpu_samples(now)
    with engine.begin() as connection:
        for host in (BUSY_HOST, IDLE_HOST):
            gpu_telemetry.delete_host_samples(connection, host)
        return gpu_telemetry.insert_samples(connection, rows)
