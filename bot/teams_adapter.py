"""The Bot Framework adapter behind Teams: CloudAdapter with spendbot's credentials, retrying 429s.

With ``MICROSOFT_APP_ID`` and ``MICROSOFT_APP_PASSWORD`` set the SDK validates the JWT on every
incoming activity and signs outgoing calls; without them it runs unauthenticated (Bot Framework
Emulator style), which `bot.teams_app` allows only from loopback. The connector answers 429 when a
conversation is sent to too fast (about 7 messages a second per thread): every send and update
is retried with backoff, honouring Retry-After, so no message is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.core.conversation_reference_extension import get_continuation_activity
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ConversationReference, ResourceResponse
from botframework.connector import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from msrest.exceptions import HttpOperationError

from bot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIED_STATUSES = (429, 503)
"""Throttled, or unavailable before doing anything: safe to send again."""
MAX_DELAY = 60.0


def has_credentials(settings: Settings) -> bool:
    """Whether Teams requests must carry a valid Bot Framework JWT."""
    return bool(settings.microsoft_app_id)


def _retry_after(error: HttpOperationError) -> float | None:
    headers = getattr(error.response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


class _ReusingConnectorFactory(ConnectorFactory):
    """Hands out one connector client per (app, service URL, audience), built once."""

    def __init__(self, inner: ConnectorFactory, clients: dict[tuple, ConnectorClient]) -> None:
        self.inner = inner
        self.clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (getattr(self.inner, "_app_id", None), service_url, audience)
        if key not in self.clients:
            self.clients[key] = await self.inner.create(service_url, audience)
        return self.clients[key]


class ReusingAuthentication(ConfigurationBotFrameworkAuthentication):
    """Bot Framework authentication that reuses connector and user-token clients across turns.

    The SDK builds both for every incoming activity and every proactive turn, each costing
    about 5 ms of event-loop time (msrest set-up), so under load acks queue behind them; the
    SDK's older adapter cached them the same way. Credentials refresh their own tokens.
    """

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._clients: dict[tuple, ConnectorClient] = {}
        self._token_clients: dict[str | None, UserTokenClient] = {}

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        """Authenticate as the SDK does; the result's factory reuses clients."""
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _ReusingConnectorFactory(
                result.connector_factory, self._clients
            )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        """The SDK's factory for `claims_identity`, reusing clients."""
        inner = super().create_connector_factory(claims_identity)
        return _ReusingConnectorFactory(inner, self._clients)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        """One user-token client per app id (audience claim, else app id claim)."""
        app_id = claims_identity.get_claim_value(
            AuthenticationConstants.AUDIENCE_CLAIM
        ) or claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)
        if app_id not in self._token_clients:
            self._token_clients[app_id] = await super().create_user_token_client(claims_identity)
        return self._token_clients[app_id]


class SpendbotAdapter(CloudAdapter):
    """CloudAdapter whose sends and updates survive throttling, with a thread-aware continuation."""

    def __init__(
        self, settings: Settings, *, retries: int | None = None, backoff: float | None = None
    ) -> None:
        password = settings.microsoft_app_password
        configuration = SimpleNamespace(
            APP_ID=settings.microsoft_app_id or "",
            APP_PASSWORD=password.get_secret_value() if password else "",
            APP_TYPE=settings.microsoft_app_type,
            APP_TENANTID=settings.microsoft_app_tenant_id or "",
        )
        super().__init__(ReusingAuthentication(configuration))
        self.app_id = settings.microsoft_app_id or ""
        self.retries = settings.connector_retries if retries is None else retries
        self.backoff = settings.connector_backoff if backoff is None else backoff
        self.on_turn_error = self._log_turn_error

    @staticmethod
    async def _log_turn_error(context: TurnContext, error: Exception) -> None:
        log.error("Teams turn failed (activity %s)", context.activity.id, exc_info=error)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except HttpOperationError as error:
                status = getattr(error.response, "status_code", None)
                if status not in RETRIED_STATUSES or attempt == self.retries:
                    raise
                delay = _retry_after(error)
                delay = self.backoff * 2**attempt if delay is None else delay
                log.warning("Bot Connector answered %s; retrying in %.1f s", status, delay)
                await asyncio.sleep(min(delay, MAX_DELAY))
        raise AssertionError("unreachable")

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        """Send one activity at a time, so a retry never repeats one that already went."""
        responses: list[ResourceResponse] = []
        for activity in activities:
            responses += await self._retrying(
                lambda activity=activity: super(SpendbotAdapter, self).send_activities(
                    context, [activity]
                )
            )
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> Any:
        """Replace a posted activity (a card after its approval), retried like a send."""
        return await self._retrying(
            lambda: super(SpendbotAdapter, self).update_activity(context, activity)
        )

    async def continue_thread(
        self, reference: ConversationReference, logic: Callable[[TurnContext], Awaitable]
    ) -> None:
        """Run `logic` in the conversation of `reference`, outside any incoming request.

        With ``reference.activity_id`` (the message being answered) sends reply to it, so they
        stay in its thread; without it they start a new post in the conversation.
        """
        activity = get_continuation_activity(reference)
        activity.id = reference.activity_id
        await self.process_proactive(
            self.create_claims_identity(self.app_id), activity, None, logic
        )
