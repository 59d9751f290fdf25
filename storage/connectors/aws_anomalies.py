"""AWS Cost Anomaly Detection: anomalies found by AWS (GetAnomalies) and feedback sent back to it.

Credentials and endpoint come from boto3's usual chain (``AWS_ENDPOINT_URL`` included). Feedback
maps spendbot's buttons to AWS's values: "Planned" is ``PLANNED_ACTIVITY``; "Expected" and "Not
an issue" are ``NO`` (not an anomaly worth reporting); a snooze says nothing to AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import boto3
import botocore.config
import botocore.exceptions

from storage.connectors.base import ConnectorError

AWS_FEEDBACK = {"expected": "NO", "not_an_issue": "NO", "planned": "PLANNED_ACTIVITY"}
"""spendbot feedback -> ProvideAnomalyFeedback's value; feedback not listed is not sent."""


@dataclass(frozen=True)
class RootCause:
    """Where AWS places an anomaly: service, account, region and usage type (any may be None)."""

    service: str | None
    linked_account: str | None
    linked_account_name: str | None
    region: str | None
    usage_type: str | None

    def label(self) -> str:
        """``Amazon EC2 in 123456789012 (ml-prod), us-east-1, BoxUsage:p5``: the parts known."""
        account = self.linked_account
        if account and self.linked_account_name:
            account = f"{account} ({self.linked_account_name})"
        where = " in ".join(part for part in (self.service, account) if part)
        return (
            ", ".join(part for part in (where, self.region, self.usage_type) if part) or "unknown"
        )


@dataclass(frozen=True)
class AwsAnomaly:
    """One anomaly as AWS Cost Anomaly Detection reports it."""

    id: str
    start: date | None
    end: date | None
    dimension: str | None
    total_impact: float
    actual: float | None
    expected: float | None
    root_causes: tuple[RootCause, ...]
    feedback: str | None

    def as_dict(self) -> dict:
        """JSON form, for replies' data and stored alerts."""
        return {
            "id": self.id,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "dimension": self.dimension,
            "impact": round(self.total_impact, 2),
            "actual": self.actual,
            "expected": self.expected,
            "root_causes": [cause.label() for cause in self.root_causes],
            "feedback": self.feedback,
        }


@dataclass(frozen=True)
class AnomalyDetectionConfig:
    """Region and retries of the Cost Explorer client (the endpoint comes from the chain)."""

    region: str = "us-east-1"
    max_attempts: int = 5


def _client(config: AnomalyDetectionConfig):
    return boto3.client(
        "ce",
        region_name=config.region,
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": config.max_attempts}
        ),
    )


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def _anomaly(raw: dict) -> AwsAnomaly:
    impact = raw.get("Impact") or {}
    return AwsAnomaly(
        id=raw["AnomalyId"],
        start=_day(raw.get("AnomalyStartDate")),
        end=_day(raw.get("AnomalyEndDate")),
        dimension=raw.get("DimensionValue"),
        total_impact=float(impact.get("TotalImpact") or 0.0),
        actual=impact.get("TotalActualSpend"),
        expected=impact.get("TotalExpectedSpend"),
        root_causes=tuple(
            RootCause(
                cause.get("Service"),
                cause.get("LinkedAccount"),
                cause.get("LinkedAccountName"),
                cause.get("Region"),
                cause.get("UsageType"),
            )
            for cause in raw.get("RootCauses") or []
        ),
        feedback=raw.get("Feedback"),
    )


@contextmanager
def _as_connector_errors(permission: str) -> Iterator[None]:
    """AWS errors as `ConnectorError`; refusals name the `permission` needed."""
    try:
        yield
    except botocore.exceptions.ClientError as error:
        raise ConnectorError(f"AWS Cost Anomaly Detection: {error}", permission) from None
    except botocore.exceptions.BotoCoreError as error:
        raise ConnectorError(f"AWS Cost Anomaly Detection: {error}") from None


def _pages(client, request: dict) -> Iterator[dict]:
    token = None
    while True:
        response = client.get_anomalies(**request, **({"NextPageToken": token} if token else {}))
        yield response
        token = response.get("NextPageToken")
        if not token:
            return


def fetch_anomalies(config: AnomalyDetectionConfig, start: date, end: date) -> list[AwsAnomaly]:
    """Anomalies whose last day falls in ``start..end``, every page, biggest impact first."""
    request = {"DateInterval": {"StartDate": start.isoformat(), "EndDate": end.isoformat()}}
    with _as_connector_errors("the reader needs ce:GetAnomalies"):
        client = _client(config)
        found = [_anomaly(raw) for page in _pages(client, request) for raw in page["Anomalies"]]
    return sorted(found, key=lambda anomaly: -abs(anomaly.total_impact))


def send_feedback(config: AnomalyDetectionConfig, anomaly_id: str, feedback: str) -> str | None:
    """Tell AWS what a person said about its anomaly; the value sent, or None when none applies."""
    value = AWS_FEEDBACK.get(feedback)
    if value is None:
        return None
    with _as_connector_errors("feedback needs ce:ProvideAnomalyFeedback"):
        _client(config).provide_anomaly_feedback(AnomalyId=anomaly_id, Feedback=value)
    return value
