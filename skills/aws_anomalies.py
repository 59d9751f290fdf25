"""AWS Cost Anomaly Detection beside spendbot's detector: which AWS anomaly an alert matches."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from typing import Any

from skills.money import format_money
from skills.replies import Reply
from storage.connectors.aws_anomalies import (
    AnomalyDetectionConfig,
    AwsAnomaly,
    fetch_anomalies,
    send_feedback,
)
from storage.connectors.base import ConnectorError

log = logging.getLogger(__name__)

AWS_PROVIDER = "AWS"


def detection_config(settings: Any) -> AnomalyDetectionConfig | None:
    """The client configuration when AWS Cost Anomaly Detection is switched on, else None."""
    if settings is None or not getattr(settings, "aws_anomaly_detection", False):
        return None
    return AnomalyDetectionConfig(max_attempts=settings.connector_retries + 1)


def aws_anomalies(settings: Any, start: date, end: date) -> tuple[list[AwsAnomaly], str | None]:
    """AWS's anomalies ending in ``start..end`` and, when it could not be asked, why."""
    config = detection_config(settings)
    if config is None:
        return [], None
    try:
        return fetch_anomalies(config, start, end), None
    except ConnectorError as error:
        log.warning("AWS Cost Anomaly Detection unavailable: %s", error)
        return [], f"AWS Cost Anomaly Detection could not be asked ({error})."


def matching(alert: dict[str, Any], anomalies: list[AwsAnomaly]) -> AwsAnomaly | None:
    """The AWS anomaly about the same spend as `alert` (its JSON form), or None.

    Same provider (AWS), overlapping days, and a root cause (or the monitored dimension) naming
    the alert's service, in the alert's account (by id or name) when both name one.
    """
    if alert.get("provider") != AWS_PROVIDER or not alert.get("service"):
        return None
    first, last = date.fromisoformat(alert["date"]), date.fromisoformat(alert["end_date"])
    for anomaly in anomalies:
        start, end = anomaly.start or first, anomaly.end or last
        if start > last or end < first:
            continue
        for cause in anomaly.root_causes:
            # Series name accounts by SubAccountName when known, else by id.
            account = alert.get("sub_account")
            names = (cause.linked_account, cause.linked_account_name)
            same_account = not cause.linked_account or not account or account in names
            if cause.service == alert["service"] and same_account:
                return anomaly
        if not anomaly.root_causes and anomaly.dimension == alert["service"]:
            return anomaly
    return None


def describe(anomaly: dict[str, Any], currency: str) -> str:
    """One line for an AWS anomaly (its JSON form): id, days, impact, root causes."""
    days = anomaly["start"]
    if anomaly["end"] != anomaly["start"]:
        days = f"{days}..{anomaly['end']}"
    spend = ""
    if anomaly["actual"] is not None and anomaly["expected"] is not None:
        spend = (
            f" ({format_money(anomaly['actual'], currency)} vs "
            f"{format_money(anomaly['expected'], currency)} expected)"
        )
    causes = "; ".join(anomaly["root_causes"]) or anomaly["dimension"] or "not given"
    return (
        f"AWS Cost Anomaly Detection {anomaly['id']}, {days}: impact "
        f"{format_money(anomaly['impact'], currency)}{spend}; root causes: {causes}"
    )


def forward_feedback(settings: Any, alert: dict[str, Any], feedback: str) -> str | None:
    """Send feedback on an alert that matched an AWS anomaly back to AWS; the value sent."""
    config = detection_config(settings)
    matched = alert.get("aws")
    if config is None or not matched:
        return None
    return send_feedback(config, matched["id"], feedback)


def with_aws_anomalies(reply: Reply, settings: Any, start: date, end: date) -> Reply:
    """`reply` (an anomaly list) with AWS's anomalies for the same days listed under it.

    Each is marked as AWS's and, when it is about the same spend as one of ours, says which.
    """
    found, problem = aws_anomalies(settings, start, end)
    if not found and problem is None:
        return reply
    currency = reply.data["currency"]
    ours = reply.data["alerts"]
    lines = []
    for anomaly in found:
        same = [alert for alert in ours if matching(alert, [anomaly]) is not None]
        if reply.data.get("team") and not same:
            continue
        also = f" (also found by spendbot: {same[0]['dimension']} {same[0]['key']})" if same else ""
        lines.append(f"• {describe(anomaly.as_dict(), currency)}{also}")
    if problem:
        lines.append(problem)
    elif lines:
        count = f"{len(lines)} anomal{'y' if len(lines) == 1 else 'ies'}"
        lines.insert(0, f"AWS Cost Anomaly Detection reports {count}:")
    data = {**reply.data, "aws_anomalies": [anomaly.as_dict() for anomaly in found]}
    return replace(reply, text="\n".join([reply.text, *lines]), data=data)
