"""Slack side of anomaly alerts: feedback buttons, and questions asked in an alert's thread."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import render_alerts
from skills.anomaly_alerts import alert_reply, give_feedback, thread_question
from skills.errors import UserError
from storage import anomaly_alerts

if TYPE_CHECKING:
    from bot.slack_app import SlackBot


def add_alert_actions(bot: SlackBot) -> None:
    """Handle the feedback buttons of posted alerts on `bot`'s Bolt app."""

    async def on_feedback(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        action = body["actions"][0]
        feedback = action["action_id"].split(":", 1)[1]
        user = body["user"]["id"]
        groups = await bot.user_groups(client, user)
        try:
            state = await bot.blocking.run(
                give_feedback,
                bot.assistant.engine,
                bot.assistant.settings,
                int(action["value"]),
                feedback,
                f"slack:{user}",
                bot.assistant.settings.current_time(),
                groups,
            )
        except UserError as error:
            await respond(response_type="ephemeral", replace_original=False, text=str(error))
            return
        if state is None:
            return
        container = body.get("container") or {}
        await client.chat_update(
            channel=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            ts=container.get("message_ts") or (body.get("message") or {}).get("ts"),
            **render_alerts.message(alert_reply(state), bot.domains),
        )

    bot.app.action(re.compile(rf"^{render_alerts.FEEDBACK_ACTION}:"))(on_feedback)


def with_alert_context(bot: SlackBot, channel: str, thread: str, text: str) -> str:
    """A question asked in an alert's thread, with the alert spelled out; others as they are."""
    state = anomaly_alerts.find_by_message(bot.assistant.engine, f"slack:{channel}", thread)
    return text if state is None else thread_question(state, text)
