"""A fake Slack Web API on 127.0.0.1 that records every call, and helpers to drive the bot server.

`FakeSlack` answers the Web API methods spendbot uses (auth.test, chat.postMessage, chat.update,
usergroups.list, the two-step file upload) and response_url posts, and can answer the next calls
of a method with 429 and Retry-After. `BotServer` runs the real aiohttp server in its own thread
and event loop; `signed` builds properly signed Slack requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0001"


@dataclass
class Call:
    """One request the fake received: Web API method (or response_url / upload path) and params."""

    method: str
    params: dict[str, Any]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """The fake Web API server; `calls` lists what the bot sent, in order."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.attempts: Counter[str] = Counter()
        self.rate_limit: Counter[str] = Counter()
        self.usergroups: list[dict[str, Any]] = []
        self.socket_url = ""
        self.lock = threading.Lock()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, payload = fake.handle(self.path, self.headers, raw)
                text = isinstance(payload, bytes)  # upload URLs and response_urls answer text
                data = payload if text else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                kind = "text/plain" if text else "application/json"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_POST

            def do_GET(self) -> None:
                # Some methods (usergroups.list) are sent as GET with the arguments in the query.
                status, headers, payload = fake.handle(self.path, self.headers, b"")
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _params(headers: Any, raw: bytes) -> dict[str, Any]:
        kind = headers.get("Content-Type") or ""
        if "json" in kind:
            return json.loads(raw or b"{}")
        if "x-www-form-urlencoded" in kind:
            params: dict[str, Any] = dict(urllib.parse.parse_qsl(raw.decode()))
            for key in ("blocks", "attachments", "files"):
                if isinstance(params.get(key), str):
                    params[key] = json.loads(params[key])
            return params
        return {}

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], Any]:
        """Answer one request: a Web API method, a response_url, or a file upload."""
        if path.startswith("/upload/"):
            self._record(Call(path, {}, raw))
            return 200, {}, b"OK - " + str(len(raw)).encode()
        if path.startswith("/response/"):
            self._record(Call(path, self._params(headers, raw)))
            return 200, {}, b"ok"
        method = path.split("?", 1)[0].removeprefix("/api/")
        with self.lock:
            self.attempts[method] += 1
            if self.rate_limit[method] > 0:
                self.rate_limit[method] -= 1
                return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        token = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not (headers.get("Authorization") or "").startswith(f"Bearer {token}"):
            return 200, {}, {"ok": False, "error": "not_authed"}
        params = self._params(headers, raw)
        if "?" in path:
            params.update(urllib.parse.parse_qsl(path.split("?", 1)[1]))
        self._record(Call(method, params))
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": TEAM}
        if method == "chat.postMessage":
            ts = f"1800000000.{next(self._ts):06d}"
            return 200, {}, {"ok": True, "channel": params.get("channel"), "ts": ts}
        if method == "chat.update":
            return 200, {}, {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "apps.connections.open":
            return 200, {}, {"ok": True, "url": self.socket_url}
        if method == "usergroups.list":
            return 200, {}, {"ok": True, "usergroups": self.usergroups}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):05d}"
            return (
                200,
                {},
                {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id},
            )
        if method == "files.completeUploadExternal":
            files = params.get("files") or []
            if isinstance(files, str):
                files = params["files"] = json.loads(files)
            return (
                200,
                {},
                {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]},
            )
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def of(self, method: str) -> list[Call]:
        """The recorded calls of one method (or response_url / upload path prefix)."""
        with self.lock:
            return [call for call in self.calls if call.method.startswith(method)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0) -> list[Call]:
        """Wait until `count` calls of `method` were recorded; fail the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(method)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} {method} call(s), got {self.of(method)}")


class BotServer:
    """The real spendbot server (`bot.server.build_server`) on a free port, in its own loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app)
        self.url = ""

    def __enter__(self) -> BotServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Response:
    """What the bot server answered, and how long it took."""

    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST over real HTTP; the status and body whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return Response(answer.status, answer.read(), time.perf_counter() - started)
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), time.perf_counter() - started)


def signed(
    secret: str, body: bytes, *, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """Headers of a request signed as Slack signs them (v0 HMAC-SHA256)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }


def event_body(event: dict[str, Any], event_id: str) -> bytes:
    """An Events API envelope around `event`."""
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
    ).encode()


def command_body(
    text: str, response_url: str, *, user: str = "U100", channel: str = "C100"
) -> bytes:
    """A slash command as Slack posts it (form-encoded)."""
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": TEAM,
            "channel_id": channel,
            "channel_name": "finops",
            "user_id": user,
            "user_name": "someone",
            "command": "/spend",
            "text": text,
            "response_url": response_url,
            "trigger_id": "1.2.3",
            "api_app_id": "A0001",
        }
    ).encode()


def action_body(payload: dict[str, Any]) -> bytes:
    """An interactivity payload (button click) as Slack posts it (form-encoded JSON)."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


class FakeSocketMode:
    """Slack's Socket Mode end: a WebSocket that says hello, sends envelopes, records acks."""

    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self.envelopes = envelopes
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/link", self._link)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        for envelope in self.envelopes:
            await socket.send_json(envelope)
        async for message in socket:
            if message.type.name == "TEXT":
                self.received.append(json.loads(message.data))
        return socket


def click_button(
    url: str,
    secret: str,
    button: dict[str, Any],
    *,
    user: str,
    ts: str,
    channel: str = "C100",
    response_url: str = "",
) -> Response:
    """Click a rendered `button` of message `ts`: a signed block_actions post to `url`."""
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "message": {"ts": ts, "type": "message"},
        "response_url": response_url,
        "trigger_id": "1.2",
        "actions": [{"type": "button", "action_ts": "1", **button}],
    }
    body = action_body(payload)
    return post(url, body, signed(secret, body, content_type="application/x-www-form-urlencoded"))
