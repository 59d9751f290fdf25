"""Teams side of anomaly alerts: feedback submits on alert cards, questions in an alert's thread."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botbuilder.schema import Activity, ConversationReference
from sqlalchemy import Engine

from skills.anomaly_alerts import alert_reply, give_feedback, thread_question
from skills.errors import UserError
from storage import anomaly_alerts

if TYPE_CHECKING:
    from bot.teams_app import TeamsBot

log = logging.getLogger(__name__)

THREAD = ";messageid="
"""What a channel thread's conversation id adds to the channel's, before the thread's first post."""


def alert_message(conversation_id: str) -> tuple[str, str] | None:
    """The (channel, message) an alert would be stored under for a thread, None outside one."""
    channel, _, root = conversation_id.partition(THREAD)
    return (f"teams:{channel}", root) if root else None


async def take_feedback(
    bot: TeamsBot,
    reference: ConversationReference,
    activity: Activity,
    value: dict[str, Any],
    actor: str,
) -> None:
    """Record an alert card's feedback submit as `actor`, as Slack's buttons do; update the card.

    Feedback the alert's rules refuse (not FinOps, not the owner) is answered under the card.
    """
    try:
        alert_id = int(value["alert_id"])
        feedback = str(value["feedback"])
    except (KeyError, TypeError, ValueError):
        log.warning("a Teams alert submit without an alert or a feedback: %r", value)
        return
    if feedback not in anomaly_alerts.FEEDBACK:
        log.warning("unknown feedback %r on Teams alert %s", feedback, alert_id)
        return
    try:
        state = await bot.blocking.run(
            give_feedback,
            bot.assistant.engine,
            bot.settings,
            alert_id,
            feedback,
            actor,
            bot.settings.current_time(),
        )
    except UserError as error:
        await bot.say(reference, str(error))
        return
    if state is None:
        return
    await bot.show_card(reference, activity.reply_to_id, await bot.card(alert_reply(state)))


def with_alert_context(engine: Engine, conversation_id: str, text: str) -> str:
    """A question asked in an alert card's thread, with the alert spelled out; others as they are."""
    message = alert_message(conversation_id)
    if message is None:
        return text
    state = anomaly_alerts.find_by_message(engine, *message)
    return text if state is None else thread_question(state, text)
