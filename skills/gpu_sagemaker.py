"""SageMaker GPU notebook instances and endpoints: discovery, idleness by activity, stop or scale.

A notebook instance is idle when it has been InService with no change (`LastModifiedTime`) for
the whole window; an endpoint when CloudWatch counts no `Invocations` over the window and the
endpoint has not changed within it. Anything unreadable counts as busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.config
import botocore.exceptions

from skills.gpu_fleet import AwsRegions, FleetError, naive_utc
from skills.gpu_idle import IdlePolicy, Verdict, kept_by_tag
from storage.focus import GPU_INSTANCE_PATTERN

SAGEMAKER = "AWS SageMaker"
"""The provider of SageMaker machines."""
SOURCE = "sagemaker"
NOTEBOOK = "notebook"
ENDPOINT = "endpoint"
ENDPOINT_ACTIONS = ("off", "scale-to-zero", "delete")
"""What an approved stop does to an endpoint (`SPENDBOT_GPU_SAGEMAKER_ENDPOINTS`)."""


@dataclass(frozen=True)
class SageMakerResource:
    """One InService GPU notebook instance or endpoint as SageMaker describes it."""

    kind: str
    name: str
    arn: str
    type: str
    region: str
    status: str
    last_modified: datetime
    variants: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


class SageMakerFleet(AwsRegions):
    """GPU notebook instances and endpoints in the given AWS regions."""

    def _tags(self, client: Any, arn: str) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in client.list_tags(ResourceArn=arn)["Tags"]}

    def _endpoint(self, client: Any, raw: dict[str, Any], region: str) -> SageMakerResource | None:
        config = client.describe_endpoint_config(EndpointConfigName=raw["EndpointConfigName"])
        variants = config["ProductionVariants"]
        gpu = [v for v in variants if GPU_INSTANCE_PATTERN.fullmatch(v.get("InstanceType", ""))]
        if not gpu:
            return None
        return SageMakerResource(
            ENDPOINT,
            raw["EndpointName"],
            raw["EndpointArn"],
            gpu[0]["InstanceType"],
            region,
            raw["EndpointStatus"],
            naive_utc(raw["LastModifiedTime"]),
            tuple(v["VariantName"] for v in variants),
            self._tags(client, raw["EndpointArn"]),
        )

    def _notebook(self, client: Any, raw: dict[str, Any], region: str) -> SageMakerResource:
        return SageMakerResource(
            NOTEBOOK,
            raw["NotebookInstanceName"],
            raw["NotebookInstanceArn"],
            raw["InstanceType"],
            region,
            raw["NotebookInstanceStatus"],
            naive_utc(raw["LastModifiedTime"]),
            tags=self._tags(client, raw["NotebookInstanceArn"]),
        )

    def resources(self) -> list[SageMakerResource]:
        """InService GPU notebook instances and endpoints in every configured region."""
        found: list[SageMakerResource] = []
        try:
            for region in self.regions:
                client = self._client("sagemaker", region)
                pages = client.get_paginator("list_notebook_instances").paginate(
                    StatusEquals="InService"
                )
                found += [
                    self._notebook(client, raw, region)
                    for page in pages
                    for raw in page["NotebookInstances"]
                    if GPU_INSTANCE_PATTERN.fullmatch(raw["InstanceType"])
                ]
                pages = client.get_paginator("list_endpoints").paginate(StatusEquals="InService")
                for page in pages:
                    for summary in page["Endpoints"]:
                        raw = client.describe_endpoint(EndpointName=summary["EndpointName"])
                        endpoint = self._endpoint(client, raw, region)
                        found += [endpoint] if endpoint else []
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise FleetError(f"SageMaker: {error}") from None
        return sorted(found, key=lambda item: (item.region, item.kind, item.name))

    def resource(self, kind: str, name: str, region: str) -> SageMakerResource | None:
        """One notebook instance or endpoint as it is now; None when it is gone."""
        client = self._client("sagemaker", region)
        try:
            if kind == NOTEBOOK:
                raw = client.describe_notebook_instance(NotebookInstanceName=name)
                return self._notebook(client, raw, region)
            return self._endpoint(client, client.describe_endpoint(EndpointName=name), region)
        except botocore.exceptions.ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if "not find" in message or "RecordNotFound" in message:
                return None
            raise FleetError(f"SageMaker: {error}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise FleetError(f"SageMaker: {error}") from None

    def invocations(self, endpoint: SageMakerResource, start: datetime, end: datetime) -> float:
        """Requests the endpoint served in [start, end], all variants together (CloudWatch)."""
        queries = [
            {
                "Id": f"v{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": endpoint.name},
                            {"Name": "VariantName", "Value": variant},
                        ],
                    },
                    "Period": max(60, int((end - start).total_seconds())),
                    "Stat": "Sum",
                },
            }
            for index, variant in enumerate(endpoint.variants)
        ]
        try:
            pages = (
                self._client("cloudwatch", endpoint.region)
                .get_paginator("get_metric_data")
                .paginate(MetricDataQueries=queries, StartTime=start, EndTime=end)
            )
            return sum(
                sum(result["Values"]) for page in pages for result in page["MetricDataResults"]
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise FleetError(f"CloudWatch: {error}") from None

    def stop(self, resource: SageMakerResource, endpoint_action: str) -> str | None:
        """Stop a notebook instance, or scale an endpoint to zero or delete it; an error or None."""
        client = self._client("sagemaker", resource.region)
        try:
            if resource.kind == NOTEBOOK:
                client.stop_notebook_instance(NotebookInstanceName=resource.name)
            elif endpoint_action == "scale-to-zero":
                client.update_endpoint_weights_and_capacities(
                    EndpointName=resource.name,
                    DesiredWeightsAndCapacities=[
                        {"VariantName": variant, "DesiredInstanceCount": 0}
                        for variant in resource.variants
                    ],
                )
            elif endpoint_action == "delete":
                client.delete_endpoint(EndpointName=resource.name)
            else:
                return "endpoints are only listed (SPENDBOT_GPU_SAGEMAKER_ENDPOINTS=off)"
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            return str(error)
        return None


def judge_resource(
    resource: SageMakerResource, invocations: float | None, now: datetime, policy: IdlePolicy
) -> Verdict:
    """Idle only when InService, unchanged for the whole window and, for an endpoint, unused."""
    kept = kept_by_tag(resource.tags, policy)
    if kept:
        return Verdict(False, kept, kept=True)
    policy = policy.for_tags(resource.tags)
    start = now - policy.window
    minutes = int(policy.window.total_seconds() // 60)
    if resource.status != "InService":
        return Verdict(False, f"{resource.kind} is {resource.status}")
    if resource.last_modified > start:
        return Verdict(False, f"{resource.kind} changed at {resource.last_modified:%Y-%m-%d %H:%M}")
    if resource.kind == NOTEBOOK:
        text = f"InService, unchanged since {resource.last_modified:%Y-%m-%d %H:%M}"
        evidence = {"at": resource.last_modified.isoformat(), "text": text, "source": SOURCE}
        return Verdict(True, text, resource.last_modified, (evidence,))
    if invocations is None:
        return Verdict(False, "endpoint invocations unreadable")
    if invocations > 0:
        return Verdict(False, f"{invocations:g} invocation(s) in the last {minutes} min")
    text = f"0 invocations in the last {minutes} min"
    evidence = {"at": start.isoformat(), "text": text, "source": "cloudwatch"}
    return Verdict(True, text, start, (evidence,))


def assess_resource(
    fleet: SageMakerFleet, resource: SageMakerResource, now: datetime, policy: IdlePolicy
) -> Verdict:
    """Read an endpoint's invocations over the window (not a notebook's) and judge the resource."""
    invocations: float | None = None
    if resource.kind == ENDPOINT:
        window = policy.for_tags(resource.tags).window
        try:
            invocations = fleet.invocations(resource, now - window, now)
        except FleetError:
            invocations = None
    return judge_resource(resource, invocations, now, policy)


def open_sagemaker(settings: Any) -> SageMakerFleet | None:
    """SageMaker in the regions the settings watch (`gpu_aws_regions`), or None when none are."""
    regions = tuple(getattr(settings, "gpu_aws_regions", ()) or ())
    return SageMakerFleet(regions) if regions else None
