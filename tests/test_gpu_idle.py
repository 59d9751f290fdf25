"""The idle policy on hand-made samples: quiet means idle, and every doubt means busy."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.settings import Settings
from skills.gpu_fleet import GpuInstance
from skills.gpu_idle import IdlePolicy, judge
from skills.gpu_scan import Machine
from storage.gpu_telemetry import GpuSample
from storage.models import Base

NOW = datetime(2026, 11, 29, 12, 0)
POLICY = IdlePolicy()


def sample(minutes_ago: int, pct: float = 1.0, gpu: int = 0, processes=None, count=0) -> GpuSample:
    return GpuSample(
        host="h1",
        instance_id=None,
        gpu_index=gpu,
        sampled_at=NOW - timedelta(minutes=minutes_ago),
        utilization_pct=pct,
        process_count=count,
        processes=processes,
        source="nvml",
    )


def every(minutes: int, step: int = 5, **kw) -> list[GpuSample]:
    return [sample(m, **kw) for m in range(0, minutes + 1, step)]


def test_quiet_for_the_whole_window_is_idle_since_the_last_busy_sample() -> None:
    samples = [sample(m, 90.0) for m in (200, 195)] + every(190)
    verdict = judge(samples, {}, NOW, POLICY)
    assert verdict.idle
    assert verdict.idle_since == NOW - timedelta(minutes=190)
    assert [item["utilization_pct"] for item in verdict.evidence] == [1.0] * 6


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        ([], "no GPU telemetry in the last 60 min"),
        (every(60)[4:], "GPU telemetry is stale"),
        ([s for s in every(60) if s.sampled_at < NOW - timedelta(minutes=40)], "stale"),
        (every(30), "GPU telemetry covers only the last 30 min"),
        ([s for s in every(60) if not 20 <= (NOW - s.sampled_at).seconds // 60 <= 40], "gap"),
        ([*every(60), sample(30, 5.0, gpu=1)], "GPU 1 at 5%"),
        ([*every(60), sample(10, processes=("python",))], "process python on GPU 0"),
        ([*every(60), sample(10, count=2)], "2 process(es) on GPU 0"),
    ],
    ids=["none", "stale", "stale-40", "short", "gap", "threshold", "process", "count"],
)
def test_missing_stale_or_busy_telemetry_is_never_idle(samples, reason: str) -> None:
    verdict = judge(samples, {}, NOW, POLICY)
    assert not verdict.idle
    assert reason in verdict.reason


def test_monitoring_processes_do_not_count_as_work() -> None:
    samples = every(60, processes=("nvidia-persistenced", "dcgm-exporter"))
    assert judge(samples, {}, NOW, POLICY).idle


def test_opt_out_tag_wins_and_tags_tune_threshold_and_window() -> None:
    assert judge(every(60), {"spendbot:keep": "TRUE"}, NOW, POLICY).reason == (
        "kept by tag spendbot:keep=true"
    )
    busy_at_3 = every(60, pct=3.0)
    assert not judge(busy_at_3, {"spendbot:idle-threshold-pct": "2"}, NOW, POLICY).idle
    assert not judge(every(60), {"spendbot:idle-window-minutes": "120"}, NOW, POLICY).idle
    assert judge(every(60), {"spendbot:idle-window-minutes": "bad"}, NOW, POLICY).idle


def test_policy_comes_from_settings() -> None:
    settings = Settings(
        gpu_idle_threshold_pct=10, gpu_idle_window_minutes=30, gpu_keep_tag="keep=yes"
    )
    policy = IdlePolicy.from_settings(settings)
    assert policy == IdlePolicy(10.0, timedelta(minutes=30), ("keep", "yes"))
    assert judge(every(30, pct=8.0), {}, NOW, policy).idle
    assert not judge(every(30), {"keep": "yes"}, NOW, policy).idle


def test_only_ebs_backed_instances_may_be_stopped() -> None:
    store = GpuInstance(
        "i-1", "g5.xlarge", "us-east-1", "running", root_device_type="instance-store"
    )
    assert "instance-store" in (Machine.from_instance(store).stop_problem or "")
    ebs = GpuInstance("i-2", "g5.xlarge", "us-east-1", "running")
    assert Machine.from_instance(ebs).stop_problem is None
    assert (
        Machine("host-1", "on-prem").stop_problem
        == "no stop hook for on-premises hosts (set SPENDBOT_GPU_STOP_HOOK)"
    )


@given(st.lists(st.tuples(st.integers(0, 120), st.floats(0, 100), st.integers(0, 3)), max_size=60))
def test_idle_only_when_every_window_sample_is_below_threshold_and_coverage_holds(points) -> None:
    samples = [sample(minutes, pct, gpu) for minutes, pct, gpu in points]
    verdict = judge(samples, {}, NOW, POLICY)
    window = [s for s in samples if s.sampled_at >= NOW - POLICY.window]
    times = sorted({s.sampled_at for s in window})
    covered = (
        bool(times)
        and NOW - times[-1] <= POLICY.max_gap
        and times[0] - (NOW - POLICY.window) <= POLICY.max_gap
        and all(b - a <= POLICY.max_gap for a, b in pairwise(times))
    )
    quiet = all(s.utilization_pct < POLICY.threshold_pct for s in window)
    assert verdict.idle == (covered and quiet)


def test_gpu_tables_match_migration_0007(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = re.compile(
        r"['<](gpu_samples|gpu_savings|gpu_snoozes)['>]|ix_(gpu_samples|gpu_savings|gpu_snoozes)_"
    )
    assert [diff for diff in diffs if mine.search(repr(diff))] == []
