"""Proactive Teams posts: a Reply (a digest, an alert) into a conversation the bot was installed in.

`TeamsPoster.post` is synchronous and runs its own short event loop, so a scheduler thread or a
CLI command calls it directly; it must not be called from the server's event loop.
"""

from __future__ import annotations

import asyncio

from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference
from sqlalchemy import Engine

from bot.render_slack import headline
from bot.render_teams import reply_card
from bot.reply_charts import chart_for
from bot.settings import Settings
from bot.teams_adapter import SpendbotAdapter
from bot.teams_app import card_message
from skills.replies import Reply
from storage import teams_refs


class TeamsPoster:
    """Posts replies as Adaptive Cards into stored Teams conversations (`storage.teams_refs`)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def post(self, conversation: str, reply: Reply) -> str:
        """Post `reply` as a new message in `conversation`; the posted activity's id.

        `conversation` is a stored conversation id or the name of a channel or chat the bot
        knows. Raises LookupError when it knows no such conversation (install the app there).
        """
        stored = teams_refs.find(self.engine, conversation)
        if stored is None:
            raise LookupError(
                f"no Teams conversation {conversation!r} is known: add spendbot to it first"
            )
        card = reply_card(
            reply, domains=self.settings.link_domains, chart=chart_for(reply, headline(reply))
        )
        reference = ConversationReference().deserialize(stored.reference)
        return asyncio.run(self._send(reference, card))

    async def _send(self, reference: ConversationReference, card: dict) -> str:
        posted: list[str] = []

        async def logic(context: TurnContext) -> None:
            response = await context.send_activity(card_message(card))
            posted.append(response.id if response else "")

        await SpendbotAdapter(self.settings).continue_thread(reference, logic)
        return posted[0]
