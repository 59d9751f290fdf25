"""Proactive Teams posts: a Reply (a digest, an alert) into a conversation the bot was installed in.

`TeamsPoster.post` and `TeamsPoster.update` are synchronous and run their own short event loop, so
a scheduler thread or a CLI command calls them directly; not from the server's event loop.
A posted message is referred to as ``<conversation id>:<activity id>``.
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
        """Post `reply` as a new message in `conversation`; ``<conversation id>:<activity id>``.

        `conversation` is a stored conversation id or the name of a channel or chat the bot
        knows. Raises LookupError when it knows no such conversation (install the app there).
        """
        stored = self._stored(conversation)
        reference = ConversationReference().deserialize(stored.reference)
        posted: list[str] = []

        async def logic(context: TurnContext) -> None:
            response = await context.send_activity(card_message(self._card(reply)))
            posted.append(response.id if response else "")

        asyncio.run(SpendbotAdapter(self.settings).continue_thread(reference, logic))
        return f"{stored.conversation_id}:{posted[0]}"

    def update(self, message: str, reply: Reply) -> None:
        """Replace the card posted as `message` (what `post` returned) with `reply`'s."""
        conversation, activity_id = message.rsplit(":", 1)
        reference = ConversationReference().deserialize(self._stored(conversation).reference)
        update = card_message(self._card(reply))
        update.id = activity_id

        async def logic(context: TurnContext) -> None:
            await context.update_activity(update)

        asyncio.run(SpendbotAdapter(self.settings).continue_thread(reference, logic))

    def _stored(self, conversation: str) -> teams_refs.StoredConversation:
        stored = teams_refs.find(self.engine, conversation)
        if stored is None:
            raise LookupError(
                f"no Teams conversation {conversation!r} is known: add spendbot to it first"
            )
        return stored

    def _card(self, reply: Reply) -> dict:
        return reply_card(
            reply, domains=self.settings.link_domains, chart=chart_for(reply, headline(reply))
        )
