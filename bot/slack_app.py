"""Slack over Bolt: mentions, DMs, ``/spend``, share and approval buttons, all on one AsyncApp.

Every handler acknowledges Slack first (events are acknowledged by Bolt before the listener runs,
commands and clicks by an explicit ``ack``) and then does the slow part: claiming the event,
asking the `Assistant`, rendering, posting. Blocking calls go through `Blocking`, so a stalled
LLM or database delays answers, never acknowledgements.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import render_slack
from bot.blocking import Blocking
from bot.pipeline import Answer, Assistant
from bot.safe_text import safe_text
from bot.settings import Settings
from bot.slack_alerts import add_alert_actions, with_alert_context
from bot.slack_gpu import add_gpu_actions
from skills.replies import Reply
from storage import deliveries
from storage.clock import utc_now

log = logging.getLogger(__name__)

THINKING = "_Working on it…_"
_LEADING_MENTION = re.compile(r"^\s*(<@[A-Z0-9]+(?:\|[^>]*)?>[\s,:]*)+")


def web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: honours 429 Retry-After, retries connection errors and 5xx."""
    assert settings.slack_bot_token is not None
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url.rstrip("/") + "/",
        timeout=30,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(workspace id, channel id) of any request Slack sends: event, command or click."""
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    event = body.get("event") or {}
    channel = (
        event.get("channel")
        or body.get("channel_id")
        or (body.get("channel") or {}).get("id")
        or (body.get("container") or {}).get("channel_id")
    )
    return team, channel


class SlackBot:
    """The Bolt app and its listeners, bound to one `Assistant`."""

    def __init__(self, settings: Settings, assistant: Assistant, blocking: Blocking) -> None:
        if settings.slack_signing_secret is None and settings.slack_app_token is None:
            raise ValueError("Slack needs SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN")
        self.settings = settings
        self.assistant = assistant
        self.blocking = blocking
        self.domains = settings.link_domains
        secret = settings.slack_signing_secret
        self.app = AsyncApp(
            signing_secret=secret.get_secret_value() if secret else None,
            client=web_client(settings),
            request_verification_enabled=secret is not None,
            process_before_response=False,
            name="spendbot",
        )
        self.app.use(self._allow_list)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.command("/spend")(self._on_command)
        self.app.action(render_slack.SHARE)(self._on_share)
        self.app.action(render_slack.APPROVE)(self._on_approve)
        self.app.action(render_slack.DENY)(self._on_deny)
        add_alert_actions(self)
        add_gpu_actions(self)
        self.app.error(self._on_error)

    async def _on_error(self, error: Exception) -> None:
        """A listener or middleware raised: log it and count it (Bolt answers Slack 500)."""
        log.error("Slack listener failed: %s", error, exc_info=error)
        self.assistant.observer.failed("slack")

    # Gatekeeping ------------------------------------------------------------------------------

    async def _allow_list(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        team, channel = _where(body)
        teams, channels = self.settings.slack_teams, self.settings.slack_channels
        # Direct messages (D...) are not channels: the channel allow-list does not apply.
        in_channel = channel is not None and not channel.startswith("D")
        if (teams and team not in teams) or (channels and in_channel and channel not in channels):
            log.info("ignored a request from workspace %s, channel %s", team, channel)
            text = "spendbot is not enabled here." if "command" in body else ""
            return BoltResponse(status=200, body=text)
        return await next()

    @staticmethod
    def _from_a_bot(event: dict[str, Any], context: AsyncBoltContext) -> bool:
        return bool(
            event.get("bot_id")
            or event.get("subtype") == "bot_message"
            or event.get("bot_profile")
            or (context.bot_user_id and event.get("user") == context.bot_user_id)
        )

    # Conversations ----------------------------------------------------------------------------

    async def _on_mention(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if self._from_a_bot(event, context):
            return
        thread = event.get("thread_ts") or event["ts"]
        await self._converse(body, event, context, thread)

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Only direct messages: channel messages reach the bot as app_mention.
        if event.get("channel_type") != "im" or event.get("subtype") not in (None, "file_share"):
            return
        if self._from_a_bot(event, context):
            return
        await self._converse(body, event, context, event.get("thread_ts") or event["ts"])

    async def _converse(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        thread: str,
    ) -> None:
        """Claim the event, show that work started, answer in the thread, mark it answered."""
        event_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"
        engine = self.assistant.engine
        if not await self.blocking.run(deliveries.claim, engine, event_id, utc_now()):
            log.info("event %s already answered or being answered; skipped", event_id)
            return
        client: AsyncWebClient = context.client
        channel = event["channel"]
        user = event.get("user", "")
        text = _LEADING_MENTION.sub("", event.get("text") or "").strip()
        if thread != event["ts"]:
            text = await self.blocking.run(with_alert_context, self, channel, thread, text)
        placeholder = await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=THINKING
        )
        try:
            answer = await self.blocking.run(
                self.assistant.ask, text, f"slack:{user}", conversation=f"slack:{channel}:{thread}"
            )
            reply = answer.reply
        except Exception:
            reply = self.assistant.incident(f"answering Slack event {event_id} failed")
        await self.update_message(client, channel, placeholder["ts"], reply)
        await self.blocking.run(deliveries.finish, engine, event_id, utc_now())
        await self._post_chart(client, reply, channel, thread)

    async def update_message(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        reply: Reply,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace a message with `reply`; if Slack refuses the blocks, the text still lands."""
        text = render_slack.fallback_text(reply, self.domains)
        try:
            await client.chat_update(
                channel=channel,
                ts=ts,
                text=text,
                blocks=blocks or render_slack.reply_blocks(reply, domains=self.domains),
            )
        except SlackApiError as error:
            log.warning("chat.update with blocks refused (%s); sending text", error.response)
            await client.chat_update(channel=channel, ts=ts, text=text, blocks=[])

    async def _post_chart(
        self, client: AsyncWebClient, reply: Reply, channel: str, thread: str | None
    ) -> None:
        """Upload the reply's chart (files API) under the answer; a failure costs only the picture."""
        try:
            upload = await self.blocking.run(
                render_slack.chart_upload, reply, self.domains, channel, thread
            )
            if upload is not None:
                await client.files_upload_v2(**upload)
        except Exception:
            log.exception("could not post a chart in %s", channel)

    # /spend ---------------------------------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        text = (command.get("text") or "").strip()
        echo = safe_text(f"/spend {text}".strip(), self.domains)
        await ack(response_type="ephemeral", text=f"{THINKING} `{echo}`")
        answer = await self._ask_command(text, command.get("user_id", ""))
        reply = answer.reply
        public = render_slack.pending_action(reply) is not None
        # An ephemeral answer replaces the "working" note; a request approvers must see is a
        # new message in the channel, after which the note goes.
        await respond(
            response_type="in_channel" if public else "ephemeral",
            replace_original=not public,
            text=render_slack.fallback_text(reply, self.domains),
            blocks=render_slack.reply_blocks(
                reply, domains=self.domains, share=None if public or reply.is_error else text
            ),
        )
        if public:
            await respond(delete_original=True)

    async def _ask_command(self, text: str, user: str) -> Answer:
        try:
            return await self.blocking.run(
                self.assistant.ask, text or "help", f"slack:{user}", command=True
            )
        except Exception:
            return Answer(self.assistant.incident("answering a /spend command failed"))

    async def _on_share(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        user = body["user"]["id"]
        text = json.loads(body["actions"][0]["value"])["text"]
        reply = (await self._ask_command(text, user)).reply
        await respond(
            response_type="in_channel",
            replace_original=False,
            text=render_slack.fallback_text(reply, self.domains),
            blocks=render_slack.reply_blocks(
                reply, domains=self.domains, note=f"Shared by <@{user}> · `/spend {text}`"
            ),
        )
        await respond(delete_original=True)
        channel = (body.get("channel") or {}).get("id")
        if channel:
            await self._post_chart(client, reply, channel, None)

    # Approvals ------------------------------------------------------------------------------------

    async def user_groups(self, client: AsyncWebClient, user: str) -> tuple[str, ...]:
        """The Slack user groups `user` belongs to, as identities (``slack-group:S1``)."""
        try:
            found = await client.usergroups_list(include_users=True)
        except SlackApiError as error:
            log.warning("cannot read user groups: %s", error.response.get("error"))
            return ()
        return tuple(
            f"slack-group:{group['id']}"
            for group in found.get("usergroups", [])
            if user in group.get("users", [])
        )

    async def _on_approve(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        await self._decide(body, client, respond, approve=True)

    async def _on_deny(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        await self._decide(body, client, respond, approve=False)

    async def _decide(
        self, body: dict[str, Any], client: AsyncWebClient, respond: Any, *, approve: bool
    ) -> None:
        """Approve or deny through the guarded-actions checks; update the message in place."""
        user = body["user"]["id"]
        action_id = int(body["actions"][0]["value"])
        groups = await self.user_groups(client, user)
        identity = f"slack:{user}"
        if approve:
            reply = await self.blocking.run(self.assistant.approve, action_id, identity, groups)
        else:
            reply = await self.blocking.run(
                self.assistant.deny, action_id, identity, "denied in Slack", groups
            )
        if "refused" in reply.data or "incident" in reply.data:
            # Not this person's to decide, or decided already (a double click): tell only them.
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=render_slack.fallback_text(reply, self.domains),
            )
            return
        verb = "Approved" if approve else "Denied"
        note = f"{verb} by <@{user}> at {utc_now():%Y-%m-%d %H:%M} UTC"
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        if "approvals" in reply.data:
            # Recorded, but more approvals are needed: keep the request and its buttons in view.
            pending = await self.blocking.run(
                self.assistant.approvals.still_pending_reply, action_id
            )
            if pending is not None:
                count = reply.data["approvals"]
                note += f" ({count} of {pending.data['action']['approvals_required']} approvals)"
                reply = pending
        await self.update_message(
            client,
            channel,
            ts,
            reply,
            render_slack.reply_blocks(reply, domains=self.domains, note=note),
        )
