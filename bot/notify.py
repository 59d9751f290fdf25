"""Posting replies into chat on the bot's own initiative: schedules and alerts.

A target is ``<platform>:<conversation>`` (``slack:#finops``, ``slack:C0123``,
``teams:<conversation key>``); the `Notifier` hands the reply to that platform's poster and
returns a message reference (``slack:C0123:1700000000.000100``) that can update the message
later where the platform allows it.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine

from bot import render_alerts, render_slack
from bot.settings import Settings
from skills.replies import Reply

log = logging.getLogger(__name__)


class Poster(Protocol):
    """Posts a reply into one platform's conversation; returns the message reference."""

    def post(self, conversation: str, reply: Reply) -> str:
        """Post `reply`; the platform's reference to the new message."""
        ...


@runtime_checkable
class Updater(Protocol):
    """A poster that can also replace a message it posted."""

    def update(self, message: str, reply: Reply) -> None:
        """Replace the message `message` (a reference `post` returned) with `reply`."""
        ...


@runtime_checkable
class Threader(Protocol):
    """A poster that can also answer in the thread of a message it posted."""

    def post_in_thread(self, message: str, reply: Reply) -> str:
        """Post `reply` in the thread of `message` (a reference `post` returned)."""
        ...


class Notifier:
    """Posts to ``platform:conversation`` targets through one poster per platform."""

    def __init__(self, posters: dict[str, Poster]) -> None:
        self.posters = posters

    def _poster(self, platform: str) -> Poster:
        poster = self.posters.get(platform)
        if poster is None:
            raise ValueError(
                f"no poster for {platform!r} targets (configured: {sorted(self.posters)})"
            )
        return poster

    def post(self, target: str, reply: Reply) -> str:
        """Post `reply` to `target`; the message reference, prefixed with the platform."""
        platform, _, conversation = target.partition(":")
        return f"{platform}:{self._poster(platform).post(conversation, reply)}"

    def follow_up(self, message: str, reply: Reply, target: str) -> str:
        """Post `reply` in the thread of a posted message; where there are none, to `target`."""
        platform, _, reference = message.partition(":")
        poster = self._poster(platform)
        if isinstance(poster, Threader):
            return f"{platform}:{poster.post_in_thread(reference, reply)}"
        return self.post(target, reply)

    def update(self, message: str, reply: Reply, target: str) -> str:
        """Replace a posted message with `reply`; where messages cannot change, post to `target`."""
        platform, _, reference = message.partition(":")
        poster = self._poster(platform)
        if isinstance(poster, Updater):
            poster.update(reference, reply)
            return message
        return self.post(target, reply)


def notifier(settings: Settings, engine: Engine | None = None) -> Notifier:
    """The posters the settings configure: Slack when its bot token is set, Teams given the store.

    Teams posts go to conversations stored when the app was installed, so they need `engine`.
    """
    posters: dict[str, Poster] = {}
    if settings.slack_bot_token is not None:
        posters["slack"] = SlackPoster(settings)
    if engine is not None:
        from bot.teams_proactive import TeamsPoster  # Bot Framework only where Teams can be reached

        posters["teams"] = TeamsPoster(settings, engine)
    return Notifier(posters)


class SlackPoster:
    """Posts through the Web API: a compact message, details and chart in its thread."""

    def __init__(self, settings: Settings) -> None:
        assert settings.slack_bot_token is not None
        self.domains = settings.link_domains
        self.client = WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url.rstrip("/") + "/",
            timeout=30,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=5),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def post(self, conversation: str, reply: Reply) -> str:
        """Post the headline and context; the table and chart follow in its thread."""
        posted = self.client.chat_postMessage(
            channel=conversation, **render_alerts.message(reply, self.domains)
        )
        channel, ts = posted["channel"], posted["ts"]
        if reply.table is not None and reply.table.rows:
            details = Reply(text="Details", table=reply.table)
            self.client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                text=render_slack.fallback_text(reply, self.domains),
                blocks=render_slack.reply_blocks(details, domains=self.domains),
            )
        self._chart(reply, channel, ts)
        return f"{channel}:{ts}"

    def post_in_thread(self, message: str, reply: Reply) -> str:
        """Post `reply` (table included) in the thread of the message `message`."""
        channel, ts = message.rsplit(":", 1)
        posted = self.client.chat_postMessage(
            channel=channel,
            thread_ts=ts,
            text=render_slack.fallback_text(reply, self.domains),
            blocks=render_slack.reply_blocks(reply, domains=self.domains),
        )
        return f"{posted['channel']}:{posted['ts']}"

    def update(self, message: str, reply: Reply) -> None:
        """Replace the headline message in place (its thread stays)."""
        channel, ts = message.rsplit(":", 1)
        self.client.chat_update(
            channel=channel, ts=ts, **render_alerts.message(reply, self.domains)
        )

    def _chart(self, reply: Reply, channel: str, thread: str) -> None:
        try:
            upload = render_slack.chart_upload(reply, self.domains, channel, thread)
            if upload is not None:
                self.client.files_upload_v2(**upload)
        except Exception:
            log.exception("could not post a chart in %s", channel)
