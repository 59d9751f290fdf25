"""Block Kit for posted alerts: the reply's blocks plus feedback buttons while an alert is open."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from bot import render_slack
from skills.anomaly_alerts import FEEDBACK_LABELS
from skills.replies import Reply
from storage.anomaly_alerts import OPEN

FEEDBACK_ACTION = "alert_feedback"
"""Prefix of the feedback buttons' action ids: ``alert_feedback:expected`` and so on."""


def feedback_buttons(alert_id: int) -> ActionsBlock:
    """Expected, Planned, Not an issue, Snooze 7 days: each carries the alert's number."""
    return ActionsBlock(
        block_id=f"alert_{alert_id}",
        elements=[
            ButtonElement(
                text=label, action_id=f"{FEEDBACK_ACTION}:{feedback}", value=str(alert_id)
            )
            for feedback, label in FEEDBACK_LABELS.items()
        ],
    )


def message(reply: Reply, domains: Collection[str] = ()) -> dict[str, Any]:
    """``text`` and ``blocks`` of a posted message: the reply without its table.

    The table goes in the message's thread; an open anomaly alert gets feedback buttons.
    """
    return {
        "text": render_slack.fallback_text(reply, domains),
        "blocks": blocks(replace(reply, table=None), domains),
    }


def blocks(reply: Reply, domains: Collection[str] = ()) -> list[dict[str, Any]]:
    """The reply's blocks, with feedback buttons when it is an open anomaly alert."""
    rendered = render_slack.reply_blocks(reply, domains=domains)
    alert = reply.data.get("anomaly_alert")
    if isinstance(alert, dict) and alert.get("status") == OPEN:
        rendered.append(feedback_buttons(int(alert["id"])).to_dict())
    return rendered
