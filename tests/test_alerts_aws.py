"""AWS Cost Anomaly Detection beside spendbot's: listed, named in alerts, and told our feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from bot.pipeline import Assistant
from bot.server import build_server
from storage.connectors.aws_anomalies import AnomalyDetectionConfig, send_feedback
from storage.connectors.base import ConnectorError
from storage.models import audit_log
from tests.demo_store import demo_fixtures, fake_slack_fixture
from tests.fake_cost_explorer import FakeCostExplorer, anomaly
from tests.fake_slack import BotServer, FakeSlack
from tests.test_alerts import (
    FRAME,
    P5_RESOURCE,
    alert_scheduler,
    assistant_for,
    click,
    headline_posts,
    list_anomalies,
    scan,
    stored,
)

EC2 = "Amazon Elastic Compute Cloud"
GPU_SHIFT = anomaly(
    "anomaly-ec2-p5",
    "2026-11-12",
    "2026-11-27",
    9000.0,
    12000.0,
    [
        {
            "Service": EC2,
            "Region": "us-east-1",
            "LinkedAccount": "314159265358",
            "LinkedAccountName": "ml-prod",
            "UsageType": "BoxUsage:p5.48xlarge",
        }
    ],
)
"""AWS's view of the planted GPU level shift (same service, account and days)."""
S3_BLIP = anomaly(
    "anomaly-s3",
    "2026-11-20",
    "2026-11-21",
    250.0,
    400.0,
    [{"Service": "Amazon Simple Storage Service", "LinkedAccount": "271828182845"}],
)
"""An anomaly only AWS reports."""
OLD = anomaly("anomaly-old", "2026-09-01", "2026-09-02", 5000.0, 6000.0, [{"Service": EC2}])
"""Ended before the 30 days checked: not returned for them."""


demo_file, engine = demo_fixtures("alerts_aws", FRAME)
fake = fake_slack_fixture()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCostExplorer]:
    with FakeCostExplorer([GPU_SHIFT, S3_BLIP, OLD], page_size=1) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield server


def connected(fake: FakeSlack, engine: Engine) -> Assistant:
    return assistant_for(fake, engine, aws_anomaly_detection=True)


def test_anomaly_list_shows_aws_anomalies_beside_ours(
    fake: FakeSlack, engine: Engine, aws: FakeCostExplorer
) -> None:
    assistant = connected(fake, engine)
    reply = list_anomalies(assistant)

    # Paged one anomaly at a time, over the 30 days checked (2026-10-30 to 2026-11-28).
    requests = aws.of("GetAnomalies")
    interval = {"StartDate": "2026-10-30", "EndDate": "2026-11-28"}
    assert requests == [
        {"DateInterval": interval},
        {"DateInterval": interval, "NextPageToken": "1"},
    ]
    lines = reply.text.splitlines()
    at = lines.index("AWS Cost Anomaly Detection reports 2 anomalies:")
    assert lines[at + 1 :] == [
        "• AWS Cost Anomaly Detection anomaly-ec2-p5, 2026-11-12..2026-11-27: impact $9,000.00 "
        f"($12,000.00 vs $3,000.00 expected); root causes: {EC2} in 314159265358 (ml-prod), "
        f"us-east-1, BoxUsage:p5.48xlarge (also found by spendbot: resource {P5_RESOURCE})",
        "• AWS Cost Anomaly Detection anomaly-s3, 2026-11-20..2026-11-21: impact $250.00 "
        "($400.00 vs $150.00 expected); root causes: Amazon Simple Storage Service in "
        "271828182845",
    ]
    assert [item["id"] for item in reply.data["aws_anomalies"]] == ["anomaly-ec2-p5", "anomaly-s3"]


def test_anomaly_list_is_unchanged_when_not_connected(
    fake: FakeSlack, engine: Engine, aws: FakeCostExplorer
) -> None:
    assistant = assistant_for(fake, engine)
    reply = list_anomalies(assistant)
    assert aws.calls == []
    assert "AWS Cost Anomaly Detection" not in reply.text


def test_alerts_name_the_matching_aws_anomaly_and_feedback_goes_back_to_aws(
    fake: FakeSlack, engine: Engine, aws: FakeCostExplorer
) -> None:
    assistant = connected(fake, engine)
    scheduler = alert_scheduler(assistant)
    scan(scheduler)
    texts = {call.params["text"] for call in headline_posts(fake)}
    shift_text = next(text for text in texts if P5_RESOURCE in text)
    spike_text = next(text for text in texts if "gpt-4o" in text)
    assert "Also reported by AWS Cost Anomaly Detection anomaly-ec2-p5" in shift_text
    assert "impact $9,000.00" in shift_text and "BoxUsage:p5.48xlarge" in shift_text
    assert "AWS Cost Anomaly Detection" not in spike_text

    by_key = stored(engine)
    shift, spike = by_key[P5_RESOURCE], by_key["gpt-4o"]
    with BotServer(build_server(assistant.settings, assistant)) as server:
        click(server, "planned", shift["id"], shift["message_ts"])
        fake.wait_for("chat.update")
        click(server, "not_an_issue", spike["id"], spike["message_ts"])
        fake.wait_for("chat.update", 2)
    # Only the alert AWS also reported is written back, as PLANNED_ACTIVITY.
    assert aws.of("ProvideAnomalyFeedback") == [
        {"AnomalyId": "anomaly-ec2-p5", "Feedback": "PLANNED_ACTIVITY"}
    ]
    assert [item.get("Feedback") for item in aws.anomalies] == ["PLANNED_ACTIVITY", None, None]
    with engine.connect() as connection:
        audited = [
            json.loads(detail)
            for (detail,) in connection.execute(
                select(audit_log.c.detail_json)
                .where(audit_log.c.event == "anomaly_feedback")
                .order_by(audit_log.c.id)
            )
        ]
    assert [(entry["alert_id"], entry.get("aws_feedback")) for entry in audited] == [
        (shift["id"], "PLANNED_ACTIVITY"),
        (spike["id"], None),
    ]


def test_aws_refusals_become_connector_errors_naming_the_permission(
    aws: FakeCostExplorer,
) -> None:
    with pytest.raises(ConnectorError) as raised:
        send_feedback(AnomalyDetectionConfig(max_attempts=1), "no-such-anomaly", "expected")
    assert "ce:ProvideAnomalyFeedback" in str(raised.value)
    assert aws.of("ProvideAnomalyFeedback") == [{"AnomalyId": "no-such-anomaly", "Feedback": "NO"}]
    # A snooze says nothing to AWS.
    assert send_feedback(AnomalyDetectionConfig(), "anomaly-s3", "snooze") is None
    assert len(aws.of("ProvideAnomalyFeedback")) == 1
