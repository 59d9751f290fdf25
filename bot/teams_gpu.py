"""Teams side of GPU stop requests: the keep submits run `gpu_keep` as the person who clicked."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botbuilder.schema import Activity, ConversationReference

from bot.render_gpu import keep_reason
from bot.safe_text import safe_text

if TYPE_CHECKING:
    from bot.teams_app import TeamsBot

log = logging.getLogger(__name__)


async def keep_machine(
    bot: TeamsBot,
    reference: ConversationReference,
    activity: Activity,
    value: dict[str, Any],
    actor: str,
) -> None:
    """Keep one machine of a stop request as `actor`, as Slack's buttons do; update the card.

    A refused keep (not this person's machine), or one after the request was decided, is
    answered under the card, which stays as it is.
    """
    try:
        action_id = int(value["action_id"])
        hours = int(value["hours"])
        machine = str(value["machine"])
    except (KeyError, TypeError, ValueError):
        log.warning("a Teams keep submit without an action, a machine or hours: %r", value)
        return
    skill = bot.assistant.registry.get("gpu_keep")
    assert skill is not None
    args = {"instances": [machine], "hours": hours, "reason": keep_reason(hours)}
    reply = await bot.blocking.run(bot.assistant.execute, skill, args, actor)
    approvals = bot.assistant.approvals
    pending = (
        None if reply.is_error else await bot.blocking.run(approvals.still_pending_reply, action_id)
    )
    if pending is None:
        await bot.say(reference, reply.text)
        return
    until = reply.data["action"]["targets"][0]["until"][:16].replace("T", " ")
    who = safe_text(activity.from_property.name or actor, bot.domains, markup=False)
    note = f"{who} kept {safe_text(machine, bot.domains, markup=False)} running until {until} UTC"
    await bot.show_card(reference, activity.reply_to_id, await bot.card(pending, note))
