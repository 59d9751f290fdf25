"""A fake Bot Connector (Teams' side of the Bot Framework) on 127.0.0.1 that records what it gets.

It answers the three calls spendbot makes: send to a conversation (``POST
/v3/conversations/{id}/activities``), reply to an activity (``POST .../activities/{id}``) and
update one (``PUT .../activities/{id}``), each with a fresh activity id, and can answer the next
calls with 429 and Retry-After. Helpers build the Activity JSON Teams posts to a bot.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_ID = "28:spendbot-app-id"
BOT_NAME = "spendbot"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TEAM = "19:team-general@thread.tacv2"
CHANNEL = "19:finops-channel@thread.tacv2"
_ACTIVITY_IDS = itertools.count(1)


@dataclass
class Call:
    """One request the fake received."""

    verb: str  # "send", "reply" or "update"
    conversation: str
    activity_id: str | None
    body: dict[str, Any]
    id: str = ""  # the id the fake gave the activity (an update keeps the one it replaces)


class FakeBotConnector:
    """The fake connector: `calls` lists what the bot sent, in order.

    `throttle` answers the next N calls with 429; `reject_cards` answers 400 to any activity
    with attachments, as Teams does to a message over its size limit.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.attempts = 0
        self.throttle = 0
        self.reject_cards = False
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, verb: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = fake.handle(verb, self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self._answer("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeBotConnector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        """Record one call and answer it as the Bot Connector does."""
        parts = [urllib.parse.unquote(part) for part in path.split("?", 1)[0].split("/")]
        # ['', 'v3', 'conversations', <conversation>, 'activities', <activity id>?]
        if parts[1:3] != ["v3", "conversations"] or len(parts) < 5 or parts[4] != "activities":
            return 404, {}, {"error": {"code": "NotFound", "message": path}}
        with self.lock:
            self.attempts += 1
            if self.throttle > 0:
                self.throttle -= 1
                return 429, {"Retry-After": "1"}, {"error": {"code": "Throttled"}}
            if self.reject_cards and body.get("attachments"):
                return 400, {}, {"error": {"code": "BadArgument", "message": "Message too large"}}
            activity_id = parts[5] if len(parts) > 5 else None
            verb = "update" if method == "PUT" else "reply" if activity_id else "send"
            new_id = activity_id if verb == "update" else f"1{next(self._ids):012d}"
            self.calls.append(Call(verb, parts[3], activity_id, body, str(new_id)))
            self.headers.append(headers)
        return 200, {}, {"id": new_id}

    def of(self, verb: str | None = None, kind: str | None = None) -> list[Call]:
        """Recorded calls, of one verb and/or one activity type (``message``, ``typing``)."""
        with self.lock:
            return [
                call
                for call in self.calls
                if (verb is None or call.verb == verb)
                and (kind is None or call.body.get("type") == kind)
            ]

    def cards(self, verb: str | None = None) -> list[tuple[Call, dict[str, Any]]]:
        """Calls that carried an Adaptive Card, with the card."""
        return [
            (call, attachment["content"])
            for call in self.of(verb, "message")
            for attachment in call.body.get("attachments") or []
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    def wait_for(
        self, verb: str | None = None, kind: str | None = None, count: int = 1, timeout: float = 15
    ) -> list[Call]:
        """Wait until `count` matching calls were recorded; fail the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(verb, kind)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} {verb} {kind} call(s), got {self.of()}")


def user(aad: str = "aad-alice", name: str = "Alice") -> dict[str, Any]:
    """A Teams user as the "from" of an activity."""
    return {"id": f"29:{aad}", "name": name, "aadObjectId": aad}


def activity(
    service_url: str,
    *,
    kind: str = "message",
    text: str | None = None,
    conversation: dict[str, Any] | None = None,
    sender: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Activity as Teams posts it to the bot (personal chat unless `conversation` says)."""
    sender = sender or user()
    body: dict[str, Any] = {
        "type": kind,
        # Unique, as Teams' own: the bot answers a repeated id once.
        "id": extra.pop("id", f"{int(time.time() * 1000)}{next(_ACTIVITY_IDS):04d}"),
        "timestamp": "2026-11-29T12:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "conversation": conversation
        or {
            "id": f"a:personal-{sender['aadObjectId']}",
            "conversationType": "personal",
            "tenantId": TENANT,
        },
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "channelData": {"tenant": {"id": TENANT}},
        **extra,
    }
    if text is not None:
        body["text"] = text
    return body


def channel_conversation(thread: str | None = None) -> dict[str, Any]:
    """The conversation of a channel post (or of a reply in the thread of `thread`)."""
    suffix = f";messageid={thread}" if thread else ""
    return {
        "id": f"{CHANNEL}{suffix}",
        "conversationType": "channel",
        "isGroup": True,
        "tenantId": TENANT,
    }


def channel_data() -> dict[str, Any]:
    """Teams' channelData for the FinOps channel."""
    return {
        "tenant": {"id": TENANT},
        "team": {"id": TEAM, "name": "Platform"},
        "channel": {"id": CHANNEL, "name": "finops"},
    }


def mention(service_url: str, question: str, **extra: Any) -> dict[str, Any]:
    """A channel message @mentioning the bot, with its mention entity."""
    at = f"<at>{BOT_NAME}</at>"
    return activity(
        service_url,
        text=f"{at} {question}",
        conversation=channel_conversation(extra.pop("thread", None)),
        channelData=channel_data(),
        entities=[
            {
                "type": "mention",
                "text": at,
                "mentioned": {"id": BOT_ID, "name": BOT_NAME},
            }
        ],
        **extra,
    )
