"""GPU stop requests' keep buttons, per machine: Slack Block Kit and Teams Adaptive Card submits."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement

KEEP_ACTION = "gpu_keep"
"""Prefix of the Slack keep buttons' action ids (``gpu_keep:24``); the Teams submits' verb."""
KEEPS = ((24, "24 h", ""), (24 * 7, "it's training (7 days)", "training"))
"""(hours, button wording, reason recorded) of each keep button."""
MAX_MACHINES = 10
"""Machines beyond this many are kept from chat (`keep i-0abc...`): a message has 50 blocks."""
LABEL_LIMIT = 75


def keep_reason(hours: int) -> str:
    """The reason a keep button of `hours` records."""
    return next((reason for span, _, reason in KEEPS if span == hours), "")


def _keep_targets(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The machines of a pending `gpu_stop` that get keep buttons; none for other actions."""
    if action.get("skill") != "gpu_stop":
        return []
    return list(action.get("targets", [])[:MAX_MACHINES])


def keep_submits(action: dict[str, Any]) -> list[dict[str, Any]]:
    """For a pending `gpu_stop`, one Adaptive Card ActionSet of keep submits per machine."""
    return [
        {
            "type": "ActionSet",
            "actions": [
                {
                    "type": "Action.Submit",
                    "title": f"Keep {target['id']}, {words}"[:LABEL_LIMIT],
                    "data": {
                        "verb": KEEP_ACTION,
                        "action_id": action["id"],
                        "machine": target["id"],
                        "hours": hours,
                    },
                }
                for hours, words, _ in KEEPS
            ],
        }
        for target in _keep_targets(action)
    ]


def keep_buttons(action: dict[str, Any]) -> list[ActionsBlock]:
    """For a pending `gpu_stop`, one row of keep buttons per machine; nothing for other actions."""
    return [
        ActionsBlock(
            block_id=f"gpu_keep_{action['id']}_{index}",
            elements=[
                ButtonElement(
                    text=f"Keep {target['id']}, {words}"[:LABEL_LIMIT],
                    action_id=f"{KEEP_ACTION}:{hours}",
                    value=json.dumps({"action": action["id"], "machine": target["id"]}),
                )
                for hours, words, _ in KEEPS
            ],
        )
        for index, target in enumerate(_keep_targets(action))
    ]
