"""The HTTP server behind ``spendbot serve``: Slack at /slack/events and /healthz, one asyncio loop.

`build_server` makes the aiohttp application from a Settings and an Assistant, so tests start it
on a free port of 127.0.0.1; `serve` runs it until interrupted. With ``SLACK_APP_TOKEN`` set,
Slack is reached over Socket Mode instead of /slack/events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.blocking import Blocking
from bot.pipeline import Assistant
from bot.settings import Settings
from storage.database import schema_is_current

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0
SLACK_PATH = "/slack/events"

BOT_KEY = web.AppKey("slack_bot", object)
BLOCKING_KEY = web.AppKey("blocking", Blocking)


def _database_health(assistant: Assistant) -> dict[str, Any]:
    try:
        return {"database": True, "migrations_current": schema_is_current(assistant.engine)}
    except Exception as error:
        log.warning("health check: database unreachable: %s", error)
        return {"database": False, "migrations_current": False}


def build_server(settings: Settings, assistant: Assistant, *, workers: int = 16) -> web.Application:
    """The aiohttp application: /healthz always, Slack when its credentials are set."""
    blocking = Blocking(workers)
    app = web.Application()
    app[BLOCKING_KEY] = blocking

    async def healthz(_: web.Request) -> web.Response:
        try:
            checks = await asyncio.wait_for(
                blocking.run(_database_health, assistant), HEALTH_TIMEOUT
            )
        except TimeoutError:
            checks = {"database": False, "migrations_current": False, "timeout": True}
        ok = checks["database"] and checks["migrations_current"]
        body = {"status": "ok" if ok else "unavailable", **checks, "slack": BOT_KEY in app}
        return web.json_response(body, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)

    if settings.slack_bot_token is not None:
        from bot.slack_app import SlackBot  # Slack's SDK only when Slack is configured

        bot = SlackBot(settings, assistant, blocking)
        app[BOT_KEY] = bot
        if settings.slack_app_token is not None:
            app.on_startup.append(_socket_mode_starter(bot, settings))
        else:

            async def slack_events(request: web.Request) -> web.Response:
                bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
                return await to_aiohttp_response(bolt_response)

            app.router.add_post(SLACK_PATH, slack_events)

    async def close(_: web.Application) -> None:
        blocking.close()

    app.on_cleanup.append(close)
    return app


def _socket_mode_starter(bot: Any, settings: Settings) -> Any:
    async def start(app: web.Application) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(bot.app, settings.slack_app_token.get_secret_value())
        await handler.connect_async()

        async def stop(_: web.Application) -> None:
            await handler.close_async()

        app.on_cleanup.insert(0, stop)

    return start


def serve(settings: Settings, assistant: Assistant, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    web.run_app(build_server(settings, assistant), host=host, port=port, print=None)
