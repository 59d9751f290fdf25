"""EC2 GPU instances without GPU metrics, judged by CPU and network use in moto CloudWatch."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from sqlalchemy import Engine

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from skills.gpu_fleet import Activity
from skills.gpu_idle import IdlePolicy, judge_fallback
from tests.test_gpu_fleet import NOW, REGION, aws, launch, moto_url  # noqa: F401 (fixtures)

MB = 1_000_000


def activity(instance_id: str, cpu: dict[int, float], net_in: dict[int, float], net_out=None):
    """Publish AWS/EC2 metrics like EC2 monitoring: {minutes before NOW: value}."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    series = {"CPUUtilization": cpu, "NetworkIn": net_in, "NetworkOut": net_out or net_in}
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
            "Timestamp": NOW - timedelta(minutes=minutes),
            "Value": value,
        }
        for name, points in series.items()
        for minutes, value in points.items()
    ]
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=data[start : start + 500])


def every(value: float, minutes_from: int = 180) -> dict[int, float]:
    return {minutes: value for minutes in range(5, minutes_from + 1, 5)}


def findings(engine: Engine, fallback: bool) -> tuple[dict[str, dict], dict[str, str]]:
    settings = Settings(
        database_url=str(engine.url), now=NOW, gpu_aws_regions=(REGION,), gpu_cpu_fallback=fallback
    )
    reply = Assistant(settings, engine, load_skills()).ask("which GPUs are idle?", "t:a").reply
    assert not reply.is_error, reply.text
    idle = {target["id"]: target for target in reply.data["idle"]}
    return idle, {item["id"]: item["reason"] for item in reply.data["not_idle"]}


@pytest.fixture
def instances(aws: str) -> dict[str, str]:  # noqa: F811 (fixture)
    ids = {name: launch("g5.xlarge", team="search") for name in ("quiet", "cpu", "net", "gap")}
    activity(ids["quiet"], every(1.0), every(0.2 * MB))
    activity(ids["cpu"], every(1.0) | {20: 30.0}, every(0.2 * MB))
    # 6 MB in and out together 10 minutes ago: someone is still downloading.
    activity(ids["net"], every(1.0), every(0.2 * MB) | {10: 3 * MB})
    # NetworkOut lacks the 25-minute datapoint: that period is unknown, so busy.
    out = {minutes: value for minutes, value in every(0.2 * MB).items() if minutes != 25}
    activity(ids["gap"], every(1.0), every(0.2 * MB), out)
    ids["silent"] = launch("g5.xlarge", team="search")
    return ids


def test_quiet_cpu_and_network_make_a_gpu_instance_idle_as_a_fallback(
    sqlite_engine: Engine, instances: dict[str, str]
) -> None:
    idle, reasons = findings(sqlite_engine, fallback=True)
    assert set(idle) == {instances["quiet"]}
    quiet = idle[instances["quiet"]]
    assert quiet["evidence"].startswith("fallback signal (no GPU metrics): CPU below 2%")
    assert quiet["evidence"].endswith("(peak CPU 1%, network 0.40 MB) (CPU/network fallback)")
    assert quiet["idle_since"] == (NOW - timedelta(minutes=180)).isoformat()
    at = NOW - timedelta(minutes=20)
    assert (
        reasons[instances["cpu"]] == f"no GPU telemetry; fallback signal: CPU at 30% at {at:%H:%M}"
    )
    at = NOW - timedelta(minutes=10)
    assert reasons[instances["net"]].endswith(f"network 6.0 MB at {at:%H:%M}")
    at = NOW - timedelta(minutes=25)
    assert reasons[instances["gap"]].endswith(f"CPU/network datapoint missing at {at:%H:%M}")
    assert reasons[instances["silent"]] == (
        "no GPU telemetry; fallback signal: no CPU/network telemetry in the last 60 min"
    )


def test_without_the_fallback_no_gpu_metrics_means_busy(
    sqlite_engine: Engine, instances: dict[str, str]
) -> None:
    idle, reasons = findings(sqlite_engine, fallback=False)
    assert idle == {}
    assert set(reasons.values()) == {"no GPU telemetry in the last 60 min"}
    assert set(reasons) == set(instances.values())


def test_a_stale_fallback_signal_is_busy() -> None:
    points = [Activity(NOW - timedelta(minutes=m), 0.5, 1000.0) for m in range(20, 200, 5)]
    verdict = judge_fallback(points, {}, NOW, IdlePolicy())
    assert not verdict.idle
    assert verdict.reason.startswith("no GPU telemetry; fallback signal: CPU/network telemetry is")


def test_fresh_quiet_points_are_idle_and_say_so() -> None:
    points = [Activity(NOW - timedelta(minutes=m), 0.5, 1000.0) for m in range(0, 65, 5)]
    verdict = judge_fallback(points, {}, NOW, IdlePolicy())
    assert verdict.idle and verdict.reason.startswith("fallback signal")
    assert verdict.idle_since == NOW - timedelta(minutes=60)
