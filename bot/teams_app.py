"""Microsoft Teams over the Bot Framework: /api/messages on the same aiohttp server as Slack.

Personal chats, group chats and channel @mentions all become `Assistant.ask` calls. A message is
answered at once (Teams wants a response within 15 s), before any database work; the answer, an
Adaptive Card, follows in the same conversation and thread through a continuation, after a typing
indicator repeated while it is computed. Approve/Deny submits go through `Assistant.approve`/`deny`
as ``teams:<aad object id>``, feedback on an anomaly alert card through `bot.teams_alerts`, and a
GPU stop request's keep submits through `bot.teams_gpu`; all update the card in place. An activity
the Bot Framework delivers again (to this replica or another) is answered once
(`storage.deliveries`). Every conversation the bot is installed in or spoken to is remembered
(`storage.teams_refs`) for proactive posts.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationReference,
)
from msrest.exceptions import HttpOperationError

from bot import render_teams
from bot.blocking import Blocking
from bot.pipeline import Answer, Assistant
from bot.render_gpu import KEEP_ACTION
from bot.render_slack import headline
from bot.reply_charts import chart_for
from bot.safe_text import safe_text
from bot.settings import Settings
from bot.teams_adapter import SpendbotAdapter, has_credentials
from bot.teams_alerts import take_feedback, with_alert_context
from bot.teams_gpu import keep_machine
from skills.replies import Reply
from storage import deliveries, teams_refs
from storage.clock import utc_now

log = logging.getLogger(__name__)

PATH = "/api/messages"
TYPING_EVERY = 3.0
"""Seconds between typing indicators while an answer is computed (Teams shows one ~3 s)."""
DRAIN_TIMEOUT = 30.0
WELCOME = "Hi, I'm spendbot. Ask me about cloud and AI spend, e.g. “spend last month by team”."


def identity(account: ChannelAccount | None) -> str:
    """``teams:<aad object id>`` (lower-case, as roles are granted); the channel id without one."""
    if account is None:
        return "teams:unknown"
    return f"teams:{(account.aad_object_id or account.id or 'unknown').lower()}"


def delivery_key(activity: Activity) -> str | None:
    """The key a redelivered activity shares with its first delivery; None without an id.

    Activity ids are unique within a conversation; the digest keeps the key short.
    """
    if not activity.id:
        return None
    conversation = activity.conversation.id if activity.conversation else ""
    return "teams:" + hashlib.sha256(f"{conversation}\n{activity.id}".encode()).hexdigest()


def card_message(card: dict[str, Any]) -> Activity:
    """A message activity carrying one Adaptive Card."""
    attachment = render_teams.attachment(card)
    return MessageFactory.attachment(
        Attachment(content_type=attachment["contentType"], content=attachment["content"])
    )


async def _typing(context: TurnContext) -> None:
    """Show "spendbot is typing"; a failure costs only the indicator, never the answer."""
    try:
        await context.send_activity(Activity(type=ActivityTypes.typing))
    except Exception:
        log.warning("could not send a Teams typing indicator", exc_info=True)


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is this machine (127.0.0.0/8, ::1, or v4-mapped loopback)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class TeamsBot(ActivityHandler):
    """Answers Teams activities through one `Assistant`; slow work runs after the response."""

    def __init__(
        self,
        settings: Settings,
        assistant: Assistant,
        blocking: Blocking,
        adapter: SpendbotAdapter,
    ) -> None:
        self.settings = settings
        self.assistant = assistant
        self.blocking = blocking
        self.adapter = adapter
        self.domains = settings.link_domains
        self.tasks: set[asyncio.Task[None]] = set()

    # Background work ----------------------------------------------------------------------------

    def _later(self, activity: Activity, work: Coroutine[Any, Any, None]) -> None:
        """Do a message's `work` after the response: claim it, remember its conversation, answer.

        Nothing touches the database before the response, so acks never wait on the store; a
        redelivered message loses the claim and is not answered twice.
        """
        task = asyncio.create_task(self._answering(activity, work))
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a Teams reply could not be sent", exc_info=task.exception())

    async def _answering(self, activity: Activity, work: Coroutine[Any, Any, None]) -> None:
        key = delivery_key(activity)
        if key is not None and not await self._claim(key, activity):
            work.close()
            return
        await self._remember(activity)
        await work
        if key is not None:
            await self._finish(key)

    async def _claim(self, key: str, activity: Activity) -> bool:
        claimed = await self.blocking.run(deliveries.claim, self.assistant.engine, key, utc_now())
        if not claimed:
            log.info("Teams activity %s already answered; skipped", activity.id)
        return claimed

    async def _finish(self, key: str) -> None:
        await self.blocking.run(deliveries.finish, self.assistant.engine, key, utc_now())

    async def on_turn(self, turn_context: TurnContext) -> None:
        """Handle an activity once: messages claim it after the response, others before."""
        activity = turn_context.activity
        key = None if activity.type == ActivityTypes.message else delivery_key(activity)
        if key is not None and not await self._claim(key, activity):
            return
        await super().on_turn(turn_context)
        if key is not None:
            await self._finish(key)

    async def drain(self) -> None:
        """Let answers being computed reach Teams before the server stops."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=DRAIN_TIMEOUT)

    # Conversations --------------------------------------------------------------------------------

    async def _remember(self, activity: Activity) -> None:
        """Store (or refresh) the conversation's reference for proactive posts."""
        data = activity.channel_data or {}
        conversation = activity.conversation
        name = (data.get("channel") or {}).get("name") or conversation.name
        if conversation.conversation_type == "channel" and not name and data.get("team"):
            name = data["team"].get("name")  # the General channel has no name of its own
        tenant = conversation.tenant_id or (data.get("tenant") or {}).get("id")
        reference = TurnContext.get_conversation_reference(activity).serialize()
        await self.blocking.run(
            teams_refs.save,
            self.assistant.engine,
            reference,
            kind=conversation.conversation_type or "personal",
            name=name,
            tenant_id=tenant,
            now=self.settings.current_time(),
        )

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        """Installed (or renamed): remember where we are; removed: forget it."""
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(member.id == bot_id for member in activity.members_removed or []):
            await self.blocking.run(
                teams_refs.forget, self.assistant.engine, activity.conversation.id
            )
            return
        await self._remember(activity)
        if any(member.id == bot_id for member in activity.members_added or []):
            await turn_context.send_activity(WELCOME)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        """The app was installed in a scope: remember the conversation."""
        await self._remember(turn_context.activity)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """A message or a card submit: answer, decide, or take feedback, after the response."""
        activity = turn_context.activity
        reference = TurnContext.get_conversation_reference(activity)
        value = activity.value if isinstance(activity.value, dict) else {}
        verb = value.get("verb")
        if verb in (render_teams.APPROVE, render_teams.DENY):
            self._later(activity, self._decide(reference, activity, value))
            return
        if verb == render_teams.FEEDBACK:
            actor = identity(activity.from_property)
            self._later(activity, take_feedback(self, reference, activity, value, actor))
            return
        if verb == KEEP_ACTION:
            actor = identity(activity.from_property)
            self._later(activity, keep_machine(self, reference, activity, value, actor))
            return
        text = (TurnContext.remove_recipient_mention(activity) or "").strip()
        self._later(
            activity,
            self._answer(
                reference,
                text or "help",
                identity(activity.from_property),
                f"teams:{activity.conversation.id}",
            ),
        )

    async def _answer(
        self, reference: ConversationReference, text: str, user: str, conversation: str
    ) -> None:
        """Ask the Assistant, keep typing until it answers, then reply with a card.

        A question in an alert card's thread is asked with the anomaly spelled out.
        """

        def ask() -> Answer:
            question = with_alert_context(self.assistant.engine, reference.conversation.id, text)
            return self.assistant.ask(question, user, conversation=conversation)

        async def logic(context: TurnContext) -> None:
            asking = asyncio.ensure_future(self.blocking.run(ask))
            await _typing(context)
            while not (await asyncio.wait({asking}, timeout=TYPING_EVERY))[0]:
                await _typing(context)
            try:
                reply = asking.result().reply
            except Exception:
                reply = self.assistant.incident(f"answering Teams message in {conversation} failed")
            await self._send_card(context, await self.card(reply))

        await self.adapter.continue_thread(reference, logic)

    async def _send_card(self, context: TurnContext, card: dict[str, Any]) -> None:
        """Send the card; if Teams refuses it (not throttling: that is retried), send the text."""
        try:
            await context.send_activity(card_message(card))
        except HttpOperationError as error:
            log.warning("Teams refused a card (%s); sending its text", error)
            await context.send_activity(MessageFactory.text(card["fallbackText"]))

    async def say(self, reference: ConversationReference, text: str) -> None:
        """Reply in the conversation (and thread) of `reference` with plain text."""
        safe = safe_text(text, self.domains, markup=False)

        async def logic(context: TurnContext) -> None:
            await context.send_activity(MessageFactory.text(safe))

        await self.adapter.continue_thread(reference, logic)

    async def show_card(
        self, reference: ConversationReference, card_id: str | None, card: dict[str, Any]
    ) -> None:
        """Replace the posted card `card_id` in place; without one, post `card` instead."""

        async def logic(context: TurnContext) -> None:
            if card_id:
                update = card_message(card)
                update.id = card_id
                await context.update_activity(update)
            else:
                await self._send_card(context, card)

        await self.adapter.continue_thread(reference, logic)

    async def card(self, reply: Reply, note: str | None = None) -> dict[str, Any]:
        """The reply's card, with its chart when one reads better; a chart failure costs only it.

        Drawn in the worker pool: the chart and its palette reduction take tens of milliseconds.
        """

        def draw() -> dict[str, Any]:
            try:
                png = chart_for(reply, headline(reply))
            except Exception:
                log.exception("could not draw a chart for a Teams reply")
                png = None
            return render_teams.reply_card(reply, domains=self.domains, chart=png, note=note)

        return await self.blocking.run(draw)

    # Approvals ------------------------------------------------------------------------------------

    async def _decide(
        self, reference: ConversationReference, activity: Activity, value: dict[str, Any]
    ) -> None:
        """Approve or deny through the guarded-actions checks; update the card in place."""
        approve = value["verb"] == render_teams.APPROVE
        actor = identity(activity.from_property)
        try:
            action_id = int(value["action_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("a Teams card submit without an action id: %r", value)
            return
        if approve:
            reply = await self.blocking.run(self.assistant.approve, action_id, actor)
        else:
            reply = await self.blocking.run(
                self.assistant.deny, action_id, actor, "denied in Teams"
            )
        if "refused" in reply.data or "incident" in reply.data:
            # Not this person's to decide, or decided already (a double submit): say so under
            # the card, which stays as it is.
            await self.say(reference, reply.text)
            return
        who = safe_text(activity.from_property.name or actor, self.domains, markup=False)
        verb = "Approved" if approve else "Denied"
        note = f"{verb} by {who} at {self.settings.current_time():%Y-%m-%d %H:%M} UTC"
        if "approvals" in reply.data:
            # Recorded, but more approvals are needed: keep the request and its buttons.
            pending = await self.blocking.run(
                self.assistant.approvals.still_pending_reply, action_id
            )
            if pending is not None:
                needed = pending.data["action"]["approvals_required"]
                note += f" ({reply.data['approvals']} of {needed} approvals)"
                reply = pending
        await self.show_card(reference, activity.reply_to_id, await self.card(reply, note))


def add_teams_routes(
    app: web.Application, settings: Settings, assistant: Assistant, blocking: Blocking
) -> TeamsBot:
    """Serve Bot Framework activities at /api/messages; JWT-checked, or loopback-only without keys."""
    adapter = SpendbotAdapter(settings)
    bot = TeamsBot(settings, assistant, blocking, adapter)
    secured = has_credentials(settings)

    async def messages(request: web.Request) -> web.Response:
        if not secured and not is_loopback(request.remote):
            log.warning("refused an unauthenticated Teams request from %s", request.remote)
            return web.json_response({"error": "MICROSOFT_APP_ID is not set"}, status=403)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        response = await adapter.process(request, bot)
        return response or web.Response(status=201)

    async def drain(_: web.Application) -> None:
        await bot.drain()

    app.router.add_post(PATH, messages)
    app.on_shutdown.append(drain)
    return bot
