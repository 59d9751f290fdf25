"""SageMaker GPU notebooks and endpoints against moto: idle list, guarded stop, scale, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from sqlalchemy import Engine

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from skills.gpu_idle import IdlePolicy
from skills.gpu_sagemaker import ENDPOINT, NOTEBOOK, SageMakerResource, judge_resource
from tests.guarded_fakes import grant
from tests.test_gpu_fleet import aws, moto_url  # noqa: F401 (fixtures)

REGION = "us-east-1"
CREATED = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
# moto stamps resources with the real clock: the bot looks 90 minutes later, so everything created
# now is older than the 60-minute window.
NOW = CREATED + timedelta(minutes=90)
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def notebook(name: str, instance_type: str, **tags: str) -> str:
    client = boto3.client("sagemaker", region_name=REGION)
    return client.create_notebook_instance(
        NotebookInstanceName=name,
        InstanceType=instance_type,
        RoleArn=ROLE,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["NotebookInstanceArn"]


def endpoint(name: str, instance_type: str, **tags: str) -> str:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    client.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
            }
        ],
    )
    return client.create_endpoint(
        EndpointName=name,
        EndpointConfigName=f"{name}-config",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["EndpointArn"]


def invocations(name: str, count: float, minutes_before_now: int) -> None:
    """Publish what SageMaker publishes per endpoint variant in AWS/SageMaker."""
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": name},
                    {"Name": "VariantName", "Value": "main"},
                ],
                "Timestamp": NOW - timedelta(minutes=minutes_before_now),
                "Value": count,
            }
        ],
    )


@pytest.fixture
def resources(aws: str) -> dict[str, str]:  # noqa: F811 (fixture)
    """Two idle candidates, one kept notebook, one used endpoint, one CPU notebook."""
    arns = {
        "nb-train": notebook("nb-train", "ml.p3.2xlarge", team="research"),
        "nb-kept": notebook("nb-kept", "ml.p2.xlarge", **{"spendbot:keep": "true"}),
        "nb-cpu": notebook("nb-cpu", "ml.t3.medium"),
        "ep-quiet": endpoint("ep-quiet", "ml.g4dn.xlarge", team="search"),
        "ep-used": endpoint("ep-used", "ml.p3.2xlarge"),
    }
    invocations("ep-used", 3, 15)
    # Outside the window: traffic 80 minutes ago does not make the endpoint busy now.
    invocations("ep-quiet", 5, 80)
    return arns


def assistant(engine: Engine, endpoints: str = "off") -> Assistant:
    settings = Settings(
        database_url=str(engine.url),
        now=NOW,
        gpu_aws_regions=(REGION,),
        gpu_sagemaker_endpoints=endpoints,
    )
    return Assistant(settings, engine, load_skills())


def test_idle_list_has_quiet_gpu_notebooks_and_endpoints_only(
    sqlite_engine: Engine, resources: dict[str, str]
) -> None:
    reply = assistant(sqlite_engine).ask("which GPUs are idle?", "terminal:alice").reply
    assert not reply.is_error, reply.text
    idle = {target["id"]: target for target in reply.data["idle"]}
    assert set(idle) == {resources["nb-train"], resources["ep-quiet"]}
    reasons = {item["id"]: item["reason"] for item in reply.data["not_idle"]}
    assert set(reasons) == {resources["nb-kept"], resources["ep-used"]}
    assert reasons[resources["nb-kept"]] == "kept by tag spendbot:keep=true"
    assert reasons[resources["ep-used"]] == "3 invocation(s) in the last 60 min"

    nb, ep = idle[resources["nb-train"]], idle[resources["ep-quiet"]]
    assert (nb["kind"], nb["name"], nb["type"], nb["owner"]) == (
        "notebook",
        "nb-train",
        "ml.p3.2xlarge",
        "research",
    )
    assert nb["evidence"].startswith("InService, unchanged since ")
    assert nb["evidence"].endswith("(sagemaker)")
    assert (ep["kind"], ep["owner"]) == ("endpoint", "search")
    assert ep["evidence"] == "0 invocations in the last 60 min (cloudwatch)"
    assert ep["idle_since"] == (NOW - timedelta(minutes=60)).isoformat()


def test_approved_stop_stops_the_notebook_and_only_lists_endpoints_by_default(
    sqlite_engine: Engine, resources: dict[str, str]
) -> None:
    grant(sqlite_engine, "terminal:bob")
    bot = assistant(sqlite_engine)
    proposed = bot.ask("stop the idle GPUs", "terminal:alice").reply
    action = proposed.data["action"]
    assert [t["id"] for t in action["targets"]] == [resources["nb-train"]]
    done = bot.approve(action["id"], "terminal:bob")
    assert not done.is_error, done.text
    assert done.data["action"]["result"]["done"] == [resources["nb-train"]]

    client = boto3.client("sagemaker", region_name=REGION)
    status = client.describe_notebook_instance(NotebookInstanceName="nb-train")
    assert status["NotebookInstanceStatus"] in ("Stopping", "Stopped")
    assert client.describe_endpoint(EndpointName="ep-quiet")["EndpointStatus"] == "InService"
    kept = client.describe_notebook_instance(NotebookInstanceName="nb-kept")
    assert kept["NotebookInstanceStatus"] == "InService"


def test_scale_to_zero_rechecks_invocations_before_it_runs(
    sqlite_engine: Engine, resources: dict[str, str]
) -> None:
    grant(sqlite_engine, "terminal:bob")
    bot = assistant(sqlite_engine, "scale-to-zero")
    text = f"stop gpu {resources['ep-quiet']} {resources['nb-train']}"
    proposed = bot.ask(text, "terminal:alice").reply
    assert "action" in proposed.data, (proposed.text, proposed.context, proposed.data)
    action = proposed.data["action"]
    assert {t["id"] for t in action["targets"]} == {resources["nb-train"], resources["ep-quiet"]}

    invocations("ep-quiet", 2, 5)  # it serves traffic again before the approval
    done = bot.approve(action["id"], "terminal:bob")
    result = done.data["action"]["result"]
    assert result["done"] == [resources["nb-train"]]
    [skipped] = result["skipped"]
    assert skipped == {
        "id": resources["ep-quiet"],
        "reason": "busy again: 2 invocation(s) in the last 60 min",
    }
    variant = boto3.client("sagemaker", region_name=REGION).describe_endpoint(
        EndpointName="ep-quiet"
    )["ProductionVariants"][0]
    assert variant.get("DesiredInstanceCount", 1) == 1


@pytest.mark.parametrize("setting", ["scale-to-zero", "delete"])
def test_an_approved_endpoint_stop_does_what_is_configured(
    sqlite_engine: Engine, resources: dict[str, str], setting: str
) -> None:
    grant(sqlite_engine, "terminal:bob")
    bot = assistant(sqlite_engine, setting)
    action = bot.ask(f"stop gpu {resources['ep-quiet']}", "terminal:alice").reply.data["action"]
    done = bot.approve(action["id"], "terminal:bob")
    assert done.data["action"]["result"]["done"] == [resources["ep-quiet"]], done.text
    client = boto3.client("sagemaker", region_name=REGION)
    if setting == "delete":
        assert "GPU machines deleted 1," in done.text
        names = [e["EndpointName"] for e in client.list_endpoints()["Endpoints"]]
        assert names == ["ep-used"]
    else:
        assert "GPU machines scaled to zero 1," in done.text
        variant = client.describe_endpoint(EndpointName="ep-quiet")["ProductionVariants"][0]
        assert variant["DesiredInstanceCount"] == 0


def resource(kind: str, modified: datetime, status: str = "InService") -> SageMakerResource:
    return SageMakerResource(kind, "r", "arn", "ml.p3.2xlarge", REGION, status, modified, ("main",))


@pytest.mark.parametrize(
    ("item", "used", "idle", "reason"),
    [
        (resource(NOTEBOOK, NOW - timedelta(minutes=61)), None, True, "InService, unchanged"),
        (resource(NOTEBOOK, NOW - timedelta(minutes=59)), None, False, "notebook changed at"),
        (resource(NOTEBOOK, NOW - timedelta(days=1), "Pending"), None, False, "notebook is"),
        (resource(ENDPOINT, NOW - timedelta(days=1)), None, False, "endpoint invocations unread"),
        (resource(ENDPOINT, NOW - timedelta(days=1)), 0.0, True, "0 invocations"),
        (resource(ENDPOINT, NOW - timedelta(days=1)), 1.0, False, "1 invocation(s)"),
    ],
)
def test_judge_resource_is_fail_safe(
    item: SageMakerResource, used: float | None, idle: bool, reason: str
) -> None:
    verdict = judge_resource(item, used, NOW, IdlePolicy())
    assert verdict.idle is idle and verdict.reason.startswith(reason)
