"""The HTTP server behind ``spendbot serve``: Slack at /slack/events, /healthz, /metrics, one loop.

`build_server` makes the aiohttp application from a Settings and an Assistant, so tests start it
on a free port of 127.0.0.1; `serve` runs it until interrupted. With ``SLACK_APP_TOKEN`` set,
Slack is reached over Socket Mode instead of /slack/events.
Teams (Bot Framework) is served at /api/messages (`bot.teams_app`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.blocking import Blocking
from bot.gpu_metrics_api import add_gpu_metrics_routes
from bot.metrics import Metrics
from bot.pipeline import Assistant
from bot.request_ids import request_id_middleware
from bot.settings import Settings
from bot.teams_adapter import has_credentials
from bot.teams_app import add_teams_routes
from storage.database import schema_is_current
from storage.freshness import FreshnessCache

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0
SLACK_PATH = "/slack/events"

BOT_KEY = web.AppKey("slack_bot", object)
BLOCKING_KEY = web.AppKey("blocking", Blocking)
METRICS_KEY = web.AppKey("metrics", Metrics)


def _database_health(assistant: Assistant, freshness: FreshnessCache) -> dict[str, Any]:
    try:
        current = schema_is_current(assistant.engine)
        # Freshness is reported, not judged: stale data is no reason to take a replica out.
        providers = {name: f.as_dict() for name, f in freshness.get().items()} if current else {}
        sources = freshness.sources() if current else {}
        return {
            "database": True,
            "migrations_current": current,
            "freshness": providers,
            "sources": sources,
        }
    except Exception as error:
        log.warning("health check: database unreachable: %s", error)
        return {"database": False, "migrations_current": False}


def build_server(
    settings: Settings,
    assistant: Assistant,
    *,
    workers: int = 16,
    metrics: Metrics | None = None,
) -> web.Application:
    """The aiohttp application: /healthz and /metrics always, Slack when its credentials are set.

    `metrics` (a fresh `Metrics` by default) also becomes the assistant's observer.
    """
    blocking = Blocking(workers)
    metrics = metrics or Metrics()
    assistant.observer = metrics
    freshness = FreshnessCache(assistant.engine)
    app = web.Application(middlewares=[request_id_middleware, metrics.middleware])
    app[BLOCKING_KEY] = blocking
    app[METRICS_KEY] = metrics
    metrics.add_routes(app)

    async def healthz(_: web.Request) -> web.Response:
        try:
            checks = await asyncio.wait_for(
                blocking.run(_database_health, assistant, freshness), HEALTH_TIMEOUT
            )
        except TimeoutError:
            checks = {"database": False, "migrations_current": False, "timeout": True}
        ok = checks["database"] and checks["migrations_current"]
        platforms = {"slack": BOT_KEY in app, "teams": has_credentials(settings)}
        body = {"status": "ok" if ok else "unavailable", **checks, **platforms}
        return web.json_response(body, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    add_gpu_metrics_routes(app, settings, assistant, blocking)

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

    add_teams_routes(app, settings, assistant, blocking)

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
    app = build_server(settings, assistant)
    if settings.scheduler:
        from bot.scheduler import add_scheduler  # APScheduler only when schedules run here

        add_scheduler(app, settings, assistant)
    web.run_app(app, host=host, port=port, print=None)
