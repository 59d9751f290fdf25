"""Request ids: the aiohttp middleware that gives each HTTP request one, for its log records."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.logging_setup import REQUEST_ID

REQUEST_ID_HEADER = "X-Request-Id"
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id (a well-formed incoming X-Request-Id, else a new one)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
        if not response.prepared:  # a WebSocket has sent its headers already
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        REQUEST_ID.reset(token)
