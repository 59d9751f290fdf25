"""The demo's GPU telemetry: one busy and one idle on-premises host, as the idle policy sees them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from storage.demo_gpus import BUSY_HOST, IDLE_HOST, load_demo_gpu_samples
from storage.models import gpu_samples
from tests.conftest import make_assistant

NOW = datetime(2026, 11, 29, 12, 0)


def test_the_idle_list_names_the_idle_demo_host_only(sqlite_engine: Engine) -> None:
    written = load_demo_gpu_samples(sqlite_engine, NOW)
    # Reloading replaces the demo hosts' samples instead of doubling them.
    assert load_demo_gpu_samples(sqlite_engine, NOW) == written
    with sqlite_engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(gpu_samples)).scalar_one()
        newest = connection.execute(select(func.max(gpu_samples.c.sampled_at))).scalar_one()
    assert stored == written == 2 * 8 * (3 * 60 + 1)
    assert newest == NOW
    reply = make_assistant(sqlite_engine, NOW).ask("which GPUs are idle?", "terminal").reply
    assert reply.table is not None
    listed = [row[0] for row in reply.table.rows]
    assert listed == [IDLE_HOST] and BUSY_HOST not in reply.text
    # Idle since its training stopped, 150 minutes before the last sample.
    assert (NOW - timedelta(minutes=150)).strftime("%H:%M") in str(reply.table.rows[0])


def test_old_demo_telemetry_counts_as_busy(sqlite_engine: Engine) -> None:
    load_demo_gpu_samples(sqlite_engine, NOW)
    later = NOW + timedelta(hours=2)
    reply = make_assistant(sqlite_engine, later).ask("which GPUs are idle?", "terminal").reply
    assert reply.table is None or IDLE_HOST not in [row[0] for row in reply.table.rows]
