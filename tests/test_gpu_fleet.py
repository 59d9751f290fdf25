"""Idle GPUs end to end against moto: discovery, CloudWatch, the idle list, guarded stop, savings."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, select

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage import allocation
from storage.actions import list_actions
from storage.connectors.base import focus_frame
from storage.ingest import ingest_frame
from storage.models import gpu_savings
from tests.gpu_billing import usage_row
from tests.guarded_fakes import grant

NOW = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
REGION = "us-east-1"
AMI = "ami-12c6146b"
A_HOURLY = 0.9  # what the billing rows of instance A charge per hour
P4D_LIST = 32.7726  # skills/gpu_prices.py's on-demand price, checked by hand against AWS's page


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One moto server on 127.0.0.1 for the module; each test resets it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto state that boto3 reaches through AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    boto3.setup_default_session()
    yield moto_url
    boto3.DEFAULT_SESSION = None


def launch(instance_type: str, **tags: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    response = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        **({"TagSpecifications": spec} if tags else {}),
    )
    return response["Instances"][0]["InstanceId"]


def utilization(instance_id: str, points: dict[int, float], gpu: int = 0) -> None:
    """Publish GPU utilization like the CloudWatch agent: {minutes before NOW: percent}."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    data = [
        {
            "MetricName": "nvidia_smi_utilization_gpu",
            "Dimensions": [
                {"Name": "InstanceId", "Value": instance_id},
                {"Name": "index", "Value": str(gpu)},
                {"Name": "name", "Value": "NVIDIA A10G"},
            ],
            "Timestamp": NOW - timedelta(minutes=minutes),
            "Value": value,
        }
        for minutes, value in points.items()
    ]
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="CWAgent", MetricData=data[start : start + 500])


def quiet(minutes_from: int, minutes_to: int = 5, value: float = 1.0) -> dict[int, float]:
    return {minutes: value for minutes in range(minutes_to, minutes_from + 1, 5)}


def billing_rows(resource: str, days: list[datetime], cost: float, hours: float, account: str):
    return focus_frame(
        [
            usage_row(
                resource,
                day,
                cost,
                hours,
                team="search",
                description="g5.xlarge usage",
                account=account,
            )
            for day in days
        ]
    )


def assistant(engine: Engine, now: datetime = NOW) -> Assistant:
    settings = Settings(database_url=str(engine.url), now=now, gpu_aws_regions=(REGION,))
    return Assistant(settings, engine, load_skills())


CASES = {
    # name: (instance type, tags, {gpu index: CloudWatch points})
    "idle": ("g5.xlarge", {"Name": "a"}, {0: quiet(180)}),
    "kept": (
        "p4d.24xlarge",
        {"team": "research", "spendbot:keep": "true"},
        {0: quiet(180, value=0.0)},
    ),
    "busy": ("g5.xlarge", {"team": "search"}, {0: quiet(180) | {20: 40.0}}),
    "silent": ("g5.2xlarge", {"team": "search"}, {}),
    "stale": ("g5.xlarge", {"team": "search"}, {0: quiet(180, 40)}),
    "cpu": ("m5.large", {"team": "search"}, {}),
    "listed": (
        "p4d.24xlarge",
        {"team": "research"},
        {0: quiet(180, value=0.0), 1: quiet(180, value=2.0)},
    ),
}


def make_fleet(engine: Engine, names: tuple[str, ...]) -> dict[str, str]:
    """Launch the named cases, publish their utilization, bill instance A, give search a contact."""
    ids = {}
    for name in names:
        instance_type, tags, gpus = CASES[name]
        ids[name] = launch(instance_type, **tags)
        for gpu, points in gpus.items():
            utilization(ids[name], points, gpu)
    today = NOW.replace(hour=0, minute=0)
    week = [today - timedelta(days=day) for day in range(1, 8)]
    ingest_frame(engine, billing_rows(ids["idle"], week, A_HOURLY * 24, 24.0, "111"), "t")
    with engine.begin() as connection:
        allocation.set_contact(connection, "search", "slack:#search", by="test", at=NOW)
    return ids


@pytest.fixture
def fleet(aws: str, sqlite_engine: Engine) -> dict[str, str]:
    """The cases a stop plan has to choose between."""
    return make_fleet(sqlite_engine, ("idle", "kept", "busy", "listed"))


def stop_calls(recorded: list[list[str]]) -> None:
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.ec2.StopInstances",
        lambda params, **_: recorded.append(list(params["InstanceIds"])),
    )


def approving_bot(engine: Engine) -> tuple[Assistant, list[list[str]]]:
    """An assistant whose StopInstances calls are recorded; terminal:bob may approve."""
    calls: list[list[str]] = []
    stop_calls(calls)
    grant(engine, "terminal:bob")
    return assistant(engine), calls


def states(ids: dict[str, str]) -> dict[str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    response = ec2.describe_instances(InstanceIds=list(ids.values()))
    by_id = {
        i["InstanceId"]: i["State"]["Name"]
        for r in response["Reservations"]
        for i in r["Instances"]
    }
    return {name: by_id[instance] for name, instance in ids.items()}


def test_idle_list_names_only_quiet_opted_in_gpu_instances(aws: str, sqlite_engine: Engine) -> None:
    fleet = make_fleet(sqlite_engine, tuple(CASES))
    reply = assistant(sqlite_engine).ask("which GPUs are idle?", "terminal:alice").reply
    assert not reply.is_error, reply.text
    idle = {target["id"]: target for target in reply.data["idle"]}
    assert set(idle) == {fleet["idle"], fleet["listed"]}
    reasons = {item["id"]: item["reason"] for item in reply.data["not_idle"]}
    assert set(reasons) == {fleet[name] for name in ("kept", "busy", "silent", "stale")}
    assert reasons[fleet["kept"]] == "kept by tag spendbot:keep=true"
    assert "40%" in reasons[fleet["busy"]]
    assert reasons[fleet["silent"]].startswith("no GPU telemetry")
    assert reasons[fleet["stale"]].startswith("GPU telemetry is stale")

    a, p4d = idle[fleet["idle"]], idle[fleet["listed"]]
    assert (a["owner"], a["contact"], a["price_source"]) == ("search", "slack:#search", "billing")
    assert a["hourly_cost"] == pytest.approx(A_HOURLY)
    assert (p4d["owner"], p4d["price_source"]) == ("research", "price table")
    assert p4d["hourly_cost"] == pytest.approx(P4D_LIST)
    assert a["idle_since"] == (NOW - timedelta(minutes=180)).isoformat()
    assert (a["type"], a["region"]) == ("g5.xlarge", REGION)
    assert a["evidence"].startswith("last 1%")
    assert reply.data["hourly_waste"] == pytest.approx(A_HOURLY + P4D_LIST, abs=1e-4)
    assert reply.data["daily_waste"] == pytest.approx((A_HOURLY + P4D_LIST) * 24, abs=0.01)
    assert "$33.67/hour ($808.14/day)" in reply.text


def test_approved_stop_stops_exactly_the_still_idle_instances_once(
    sqlite_engine: Engine, fleet: dict[str, str]
) -> None:
    bot, calls = approving_bot(sqlite_engine)
    proposed = bot.ask("stop the idle GPUs", "terminal:alice").reply
    assert proposed.data["needs_approval"], proposed.text
    action = proposed.data["action"]
    assert {t["id"] for t in action["targets"]} == {fleet["idle"], fleet["listed"]}
    assert calls == []

    # The p4d gets busy again between the proposal and the approval.
    utilization(fleet["listed"], {2: 85.0})
    done = bot.approve(action["id"], "terminal:bob")
    assert not done.is_error, done.text
    assert calls == [[fleet["idle"]]]
    result = done.data["action"]["result"]
    assert result["done"] == [fleet["idle"]]
    assert [item["id"] for item in result["skipped"]] == [fleet["listed"]]
    assert result["skipped"][0]["reason"].startswith("busy again: GPU 0 at 85%")
    assert done.data["action"]["state"] == "succeeded"
    after = states(fleet)
    assert after.pop("idle") in ("stopping", "stopped")
    assert set(after.values()) == {"running"}

    again = bot.approve(action["id"], "terminal:bob")
    assert again.is_error and calls == [[fleet["idle"]]]
    with sqlite_engine.connect() as connection:
        ledger = connection.execute(select(gpu_savings)).all()
    assert [(row.instance_id, row.action_id) for row in ledger] == [(fleet["idle"], action["id"])]
    assert ledger[0].hourly_cost == pytest.approx(A_HOURLY)
    assert f"saving about ${A_HOURLY * 24:.2f}/day" in done.text


def test_savings_are_price_times_hours_stopped_and_billed_difference(
    sqlite_engine: Engine, fleet: dict[str, str]
) -> None:
    bot = assistant(sqlite_engine)
    grant(sqlite_engine, "terminal:bob")
    proposed = bot.ask(f"stop idle gpu instance {fleet['idle']}", "terminal:alice").reply
    assert [t["id"] for t in proposed.data["action"]["targets"]] == [fleet["idle"]]
    assert not bot.approve(proposed.data["action"]["id"], "terminal:bob").is_error
    day_after = NOW.replace(hour=0, minute=0) + timedelta(days=1)
    ingest_frame(sqlite_engine, billing_rows(fleet["idle"], [day_after], 2.0, 2.0, "222"), "t")

    later = assistant(sqlite_engine, NOW + timedelta(hours=72))
    reply = later.ask("gpu savings last 7 days", "terminal:alice").reply
    assert not reply.is_error, reply.text
    [entry] = reply.data["stops"]
    assert entry["hours_avoided"] == pytest.approx(72)
    assert entry["expected"] == pytest.approx(A_HOURLY * 72, abs=0.01)
    assert entry["realized"] == pytest.approx(A_HOURLY * 24 - 2.0, abs=0.01)
    assert reply.data["per_day"] == pytest.approx(A_HOURLY * 24, abs=0.01)


def test_dry_run_shows_the_plan_and_creates_no_action(
    sqlite_engine: Engine, fleet: dict[str, str]
) -> None:
    calls: list[list[str]] = []
    stop_calls(calls)
    reply = assistant(sqlite_engine).ask("dry run: stop the idle GPUs", "terminal:alice").reply
    assert reply.data["preview"] and not reply.is_error
    assert {t["id"] for t in reply.data["targets"]} == {fleet["idle"], fleet["listed"]}
    assert reply.text.startswith("Dry run: would stop 2 idle GPU instance(s)")
    assert list_actions(sqlite_engine) == [] and calls == []


def test_an_opted_out_instance_named_explicitly_is_not_planned(
    sqlite_engine: Engine, fleet: dict[str, str]
) -> None:
    text = f"stop gpu instances {fleet['kept']} {fleet['busy']}"
    reply = assistant(sqlite_engine).ask(text, "terminal:alice").reply
    assert reply.data["preview"] and reply.data["targets"] == []
    assert reply.text == "No idle GPU instances to stop."
    assert "kept by tag spendbot:keep=true" in reply.context
    assert list_actions(sqlite_engine) == []


def test_an_owner_keeps_an_instance_and_the_approved_stop_skips_it(
    sqlite_engine: Engine, fleet: dict[str, str]
) -> None:
    bot, calls = approving_bot(sqlite_engine)
    grant(sqlite_engine, "terminal:rita", team="research")
    grant(sqlite_engine, "terminal:sam", team="search")
    action = bot.ask("stop the idle GPUs", "terminal:alice").reply.data["action"]

    keep = f"keep {fleet['listed']} for 2 days, it's training"
    refused = bot.ask(keep, "terminal:sam").reply
    assert refused.is_error and "finops" in refused.text
    kept = bot.ask(keep, "terminal:rita").reply
    assert not kept.is_error, kept.text
    assert kept.data["action"]["state"] == "succeeded"
    assert f"until {NOW + timedelta(days=2):%Y-%m-%d %H:%M} UTC" in kept.text

    done = bot.approve(action["id"], "terminal:bob")
    assert calls == [[fleet["idle"]]]
    [skipped] = done.data["action"]["result"]["skipped"]
    assert skipped["id"] == fleet["listed"]
    assert skipped["reason"] == (
        f"kept by terminal:rita until {NOW + timedelta(days=2):%Y-%m-%d %H:%M} UTC: training"
    )
    listed = bot.ask("which GPUs are idle?", "terminal:alice").reply
    assert fleet["listed"] in {item["id"] for item in listed.data["not_idle"]}
