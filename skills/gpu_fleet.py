"""EC2 GPU instances and their CloudWatch GPU utilization behind a small fleet interface; host hooks.

Credentials come from the normal boto3 chain and ``AWS_ENDPOINT_URL`` is honoured, so tests
point the fleet at moto. GPU utilization is what the CloudWatch agent's ``nvidia_smi`` plugin
(or a DCGM exporter scraped by it) publishes in the ``CWAgent`` namespace, per GPU ``index``.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions

from storage.focus import GPU_INSTANCE_PATTERN

PROVIDER = "AWS"
ON_PREM = "on-prem"
"""The provider of GPU hosts that only an agent reports (no cloud describes them)."""
SOURCE = "cloudwatch"
PERIOD_SECONDS = 300
HOOK_TIMEOUT = 300  # seconds an on-premises stop hook may take
MAX_QUERIES = 500  # metric queries per GetMetricData request
GPU_METRICS = (
    ("CWAgent", "nvidia_smi_utilization_gpu"),
    ("CWAgent", "DCGM_FI_DEV_GPU_UTIL"),
)
"""(namespace, metric name) pairs read as GPU utilization in percent."""
ACTIVITY_METRICS = (
    ("cpu", "CPUUtilization", "Maximum"),
    ("net_in", "NetworkIn", "Sum"),
    ("net_out", "NetworkOut", "Sum"),
)
"""AWS/EC2 metrics read as the fallback signal of instances without GPU metrics."""


class FleetError(Exception):
    """The cloud could not be read; callers treat the machines it concerns as busy."""


@dataclass(frozen=True)
class GpuInstance:
    """One running GPU machine as the cloud describes it."""

    id: str
    type: str
    region: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)
    launch_time: datetime | None = None
    root_device_type: str = "ebs"
    hibernation_configured: bool = False
    provider: str = PROVIDER


@dataclass(frozen=True)
class Activity:
    """An instance's CPU and network use in one 5-minute period; None where CloudWatch has none."""

    at: datetime
    cpu_pct: float | None
    network_bytes: float | None


class GpuFleet(Protocol):
    """What the GPU skills need from a cloud: discovery, utilization, stop."""

    def instances(self) -> list[GpuInstance]:
        """Running (or starting) GPU instances."""
        ...

    def instance(self, instance_id: str, region: str) -> GpuInstance | None:
        """One instance as it is now, whatever its state; None when it is gone."""
        ...

    def utilization(
        self, instance: GpuInstance, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """GPU utilization samples in [start, end] as `gpu_samples` rows."""
        ...

    def stop(self, instance: GpuInstance, hibernate: bool) -> str | None:
        """Stop (never terminate) one instance; an error message, or None when it worked."""
        ...

    def activity(self, instance: GpuInstance, start: datetime, end: datetime) -> list[Activity]:
        """CPU and network use per 5 minutes in [start, end]: the fallback idleness signal."""
        ...


def naive_utc(value: datetime) -> datetime:
    """A datetime as naive UTC, the form the store keeps."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _instance(raw: dict[str, Any], region: str) -> GpuInstance:
    launched = raw.get("LaunchTime")
    return GpuInstance(
        id=raw["InstanceId"],
        type=raw["InstanceType"],
        region=region,
        state=raw["State"]["Name"],
        tags={tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])},
        launch_time=naive_utc(launched) if launched else None,
        root_device_type=raw.get("RootDeviceType", "ebs"),
        hibernation_configured=bool(raw.get("HibernationOptions", {}).get("Configured")),
    )


def _row(
    instance: GpuInstance, dimensions: dict[str, str], at: datetime, value: float
) -> dict[str, Any]:
    return {
        "host": dimensions.get("host", instance.id),
        "instance_id": instance.id,
        "provider": PROVIDER,
        "gpu_index": int(dimensions.get("index", dimensions.get("gpu", 0))),
        "gpu_uuid": dimensions.get("UUID"),
        "gpu_model": dimensions.get("name") or dimensions.get("modelName"),
        "sampled_at": naive_utc(at),
        "utilization_pct": float(value),
        # CloudWatch does not see processes: only NVML samples can show one.
        "process_count": 0,
        "source": SOURCE,
    }


class AwsRegions:
    """boto3 clients per service and region, made once, with botocore's standard retries."""

    def __init__(self, regions: tuple[str, ...], max_attempts: int = 5) -> None:
        self.regions = regions
        self._config = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": max_attempts}
        )
        self._clients: dict[tuple[str, str], Any] = {}

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region, config=self._config)
        return self._clients[key]


class Ec2Fleet(AwsRegions):
    """GPU instances in the given AWS regions, read with EC2 and CloudWatch."""

    def instances(self) -> list[GpuInstance]:
        """Running (or starting) GPU instances in every configured region."""
        found = []
        try:
            for region in self.regions:
                pages = (
                    self._client("ec2", region)
                    .get_paginator("describe_instances")
                    .paginate(
                        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
                    )
                )
                for page in pages:
                    for reservation in page["Reservations"]:
                        found += [
                            _instance(raw, region)
                            for raw in reservation["Instances"]
                            if GPU_INSTANCE_PATTERN.fullmatch(raw["InstanceType"])
                        ]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise FleetError(f"EC2 DescribeInstances: {error}") from None
        return sorted(found, key=lambda instance: (instance.region, instance.id))

    def instance(self, instance_id: str, region: str) -> GpuInstance | None:
        """One instance as it is now; None when it no longer exists."""
        try:
            response = self._client("ec2", region).describe_instances(InstanceIds=[instance_id])
        except botocore.exceptions.ClientError as error:
            if "NotFound" in error.response.get("Error", {}).get("Code", ""):
                return None
            raise FleetError(f"EC2 DescribeInstances: {error}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise FleetError(f"EC2 DescribeInstances: {error}") from None
        raws = [raw for r in response["Reservations"] for raw in r["Instances"]]
        return _instance(raws[0], region) if raws else None

    def utilization(
        self, instance: GpuInstance, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """Per-GPU maximum utilization per 5 minutes from CloudWatch, as `gpu_samples` rows."""
        cloudwatch = self._client("cloudwatch", instance.region)
        metrics: dict[tuple, dict[str, Any]] = {}
        try:
            for namespace, name in GPU_METRICS:
                pages = cloudwatch.get_paginator("list_metrics").paginate(
                    Namespace=namespace,
                    MetricName=name,
                    Dimensions=[{"Name": "InstanceId", "Value": instance.id}],
                )
                for page in pages:
                    for metric in page["Metrics"]:
                        dimensions = tuple(
                            sorted((d["Name"], d["Value"]) for d in metric["Dimensions"])
                        )
                        metrics[(namespace, name, dimensions)] = metric
            return self._metric_rows(cloudwatch, instance, list(metrics.values()), start, end)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise FleetError(f"CloudWatch: {error}") from None

    @staticmethod
    def _metric_rows(
        cloudwatch: Any,
        instance: GpuInstance,
        metrics: list[dict[str, Any]],
        start: datetime,
        end: datetime,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for offset in range(0, len(metrics), MAX_QUERIES):
            batch = metrics[offset : offset + MAX_QUERIES]
            queries = [
                {
                    "Id": f"m{index}",
                    "MetricStat": {"Metric": metric, "Period": PERIOD_SECONDS, "Stat": "Maximum"},
                }
                for index, metric in enumerate(batch)
            ]
            pages = cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end
            )
            for page in pages:
                for result in page["MetricDataResults"]:
                    metric = batch[int(result["Id"][1:])]
                    dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                    rows += [
                        _row(instance, dimensions, at, value)
                        for at, value in zip(result["Timestamps"], result["Values"], strict=True)
                    ]
        return rows

    def activity(self, instance: GpuInstance, start: datetime, end: datetime) -> list[Activity]:
        """Maximum CPU % and network bytes in+out per 5 minutes from the AWS/EC2 namespace."""
        queries = [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/EC2",
                        "MetricName": name,
                        "Dimensions": [{"Name": "InstanceId", "Value": instance.id}],
                    },
                    "Period": PERIOD_SECONDS,
                    "Stat": stat,
                },
            }
            for key, name, stat in ACTIVITY_METRICS
        ]
        values: dict[str, dict[datetime, float]] = {key: {} for key, _, _ in ACTIVITY_METRICS}
        try:
            pages = (
                self._client("cloudwatch", instance.region)
                .get_paginator("get_metric_data")
                .paginate(MetricDataQueries=queries, StartTime=start, EndTime=end)
            )
            for page in pages:
                for result in page["MetricDataResults"]:
                    for at, value in zip(result["Timestamps"], result["Values"], strict=True):
                        values[result["Id"]][naive_utc(at)] = float(value)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise FleetError(f"CloudWatch: {error}") from None
        cpu, net_in, net_out = (values[key] for key, _, _ in ACTIVITY_METRICS)
        return [
            Activity(
                at,
                cpu.get(at),
                net_in[at] + net_out[at] if at in net_in and at in net_out else None,
            )
            for at in sorted(set(cpu) | set(net_in) | set(net_out))
        ]

    def stop(self, instance: GpuInstance, hibernate: bool) -> str | None:
        """One StopInstances call for this instance (hibernating when asked); never terminate."""
        try:
            self._client("ec2", instance.region).stop_instances(
                InstanceIds=[instance.id], Hibernate=hibernate
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            return str(error)
        return None


def stop_host(hook: str, host: str) -> str | None:
    """Run the operator's stop hook as ``HOOK HOST``; an error message, or None on exit 0."""
    try:
        done = subprocess.run(
            [*shlex.split(hook), host], capture_output=True, text=True, timeout=HOOK_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"stop hook failed: {error}"
    if done.returncode != 0:
        return f"stop hook exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return None


def open_fleet(settings: Any) -> GpuFleet | None:
    """The fleet the settings configure (`gpu_aws_regions`), or None when none is."""
    regions = tuple(getattr(settings, "gpu_aws_regions", ()) or ())
    return Ec2Fleet(regions) if regions else None
