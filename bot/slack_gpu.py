"""Slack side of GPU stop requests: the keep buttons run `gpu_keep` as the person who clicked."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import render_slack
from bot.render_gpu import KEEP_ACTION, keep_reason
from bot.safe_text import safe_text

if TYPE_CHECKING:
    from bot.slack_app import SlackBot


def add_gpu_actions(bot: SlackBot) -> None:
    """Handle the keep buttons of GPU stop requests on `bot`'s Bolt app."""

    async def on_keep(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        clicked = body["actions"][0]
        hours = int(clicked["action_id"].split(":", 1)[1])
        value = json.loads(clicked["value"])
        user = body["user"]["id"]
        groups = await bot.user_groups(client, user)
        skill = bot.assistant.registry.get("gpu_keep")
        assert skill is not None
        args = {"instances": [value["machine"]], "hours": hours, "reason": keep_reason(hours)}
        reply = await bot.blocking.run(
            bot.assistant.execute, skill, args, f"slack:{user}", groups=groups
        )
        approvals = bot.assistant.approvals
        pending = (
            None
            if reply.is_error
            else await bot.blocking.run(approvals.still_pending_reply, int(value["action"]))
        )
        if pending is None:
            # Refused (not this person's machine to keep), or the request is decided already.
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=render_slack.fallback_text(reply, bot.domains),
            )
            return
        until = reply.data["action"]["targets"][0]["until"][:16].replace("T", " ")
        machine = safe_text(value["machine"], bot.domains)
        note = f"<@{user}> kept {machine} running until {until} UTC"
        container = body.get("container") or {}
        await bot.update_message(
            client,
            container.get("channel_id") or (body.get("channel") or {}).get("id"),
            container.get("message_ts") or (body.get("message") or {}).get("ts"),
            pending,
            render_slack.reply_blocks(pending, domains=bot.domains, note=note),
        )

    bot.app.action(re.compile(rf"^{KEEP_ACTION}:\d+$"))(on_keep)
