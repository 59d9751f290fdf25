"""``POST /api/gpu-metrics``: GPU agents push sample batches with a bearer token.

Bodies over aiohttp's 1 MiB default are refused with 413 before they are read.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web
from pydantic import ValidationError

from bot.blocking import Blocking
from bot.pipeline import Assistant
from bot.settings import Settings
from storage.gpu_telemetry import insert_samples, validated_rows

log = logging.getLogger(__name__)

PATH = "/api/gpu-metrics"
MAX_SAMPLES = 5000
INGEST_SOURCE = "gpu_agent"
"""The `source` label of GPU samples in the ingest metric."""


def _tokens(settings: Settings) -> list[bytes]:
    if settings.agent_tokens is None:
        return []
    raw = settings.agent_tokens.get_secret_value()
    return [token.strip().encode() for token in raw.split(",") if token.strip()]


def _authorized(request: web.Request, tokens: list[bytes]) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    # Compare against every token so the time taken does not tell which one nearly matched.
    matches = [hmac.compare_digest(given.strip().encode(), token) for token in tokens]
    return any(matches)


def add_gpu_metrics_routes(
    app: web.Application, settings: Settings, assistant: Assistant, blocking: Blocking
) -> None:
    """Serve the agents' endpoint when `agent_tokens` is set; without tokens there is none."""
    tokens = _tokens(settings)
    if not tokens:
        return

    def store(rows: list[dict]) -> int:
        with assistant.engine.begin() as connection:
            return insert_samples(connection, rows)

    async def gpu_metrics(request: web.Request) -> web.Response:
        if not _authorized(request, tokens):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            body = json.loads(await request.read())
            samples = body["samples"]
            if not isinstance(samples, list):
                raise TypeError("samples must be a list")
            if len(samples) > MAX_SAMPLES:
                return web.json_response(
                    {"error": f"at most {MAX_SAMPLES} samples per request"}, status=413
                )
            rows = validated_rows(samples)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return web.json_response({"error": f"{where}: {first['msg']}"}, status=422)
        except (ValueError, KeyError, TypeError) as error:
            return web.json_response(
                {"error": f"expected {{'samples': [...]}}: {error}"}, status=400
            )
        stored = await blocking.run(store, rows)
        assistant.observer.ingest_rows(INGEST_SOURCE, stored)
        return web.json_response({"stored": stored}, status=202)

    app.router.add_post(PATH, gpu_metrics)
