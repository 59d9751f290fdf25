"""A small fake Anthropic Messages API on 127.0.0.1: scripted rounds, checked requests.

Each POST /v1/messages takes the next scripted step: a response body (a dict), a callable that
builds one from the request, or an `Error(status, ...)`. Every request is recorded and checked the
way the real API would refuse it, and more: tool schemas are valid JSON Schema, the last tool and
the system prompt carry cache_control, every tool_result answers a tool_use of the message just
before it, roles alternate. A failed check answers 400 and lands in `problems`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


@dataclass
class Error:
    """A scripted error answer."""

    status: int
    error_type: str = "api_error"
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)


Step = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | Error
"""A response body, a function of the request that returns one, or an error."""


def usage(
    input_tokens: int = 100, output_tokens: int = 20, cache_write: int = 0, cache_read: int = 0
) -> dict[str, int]:
    """A usage block as the API reports it."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def tool_use(name: str, arguments: dict[str, Any], id: str) -> dict[str, Any]:
    """A tool_use content block."""
    return {"type": "tool_use", "id": id, "name": name, "input": arguments}


def message(
    *blocks: dict[str, Any] | str,
    stop_reason: str | None = None,
    usage_: dict[str, int] | None = None,
    model: str = "claude-sonnet-5-5",
) -> dict[str, Any]:
    """A Messages API response; plain strings become text blocks."""
    content = [{"type": "text", "text": b} if isinstance(b, str) else b for b in blocks]
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_ or usage(),
    }


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the request's last (user) message."""
    content = request["messages"][-1]["content"]
    return [
        block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def result_json(block: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload inside a spendbot tool result (between the label and the closing tag)."""
    content = block["content"]
    text = content if isinstance(content, str) else "".join(part["text"] for part in content)
    start, end = text.index("\n{"), text.rindex("}\n")
    return json.loads(text[start + 1 : end + 1])


def check_request(request: dict[str, Any]) -> list[str]:
    """What the real API (or our own rules) would refuse in a request."""
    problems = []
    for name in ("model", "max_tokens", "messages"):
        if name not in request:
            problems.append(f"missing {name}")
    tools = request.get("tools", [])
    for tool in tools:
        try:
            Draft202012Validator.check_schema(tool["input_schema"])
        except SchemaError as error:
            problems.append(f"tool {tool['name']}: invalid schema: {error.message}")
        if tool["input_schema"].get("type") != "object":
            problems.append(f"tool {tool['name']}: input_schema is not an object")
    if tools and "cache_control" not in tools[-1]:
        problems.append("last tool has no cache_control")
    system = request.get("system")
    if not (isinstance(system, list) and system and "cache_control" in system[-1]):
        problems.append("system prompt has no cache_control")
    marks = sum("cache_control" in tool for tool in tools) + sum(
        "cache_control" in block for block in system or [] if isinstance(block, dict)
    )
    messages = request.get("messages", [])
    for index, msg in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if msg["role"] != expected:
            problems.append(f"message {index}: role {msg['role']}, expected {expected}")
        content = msg["content"] if isinstance(msg["content"], list) else []
        marks += sum("cache_control" in block for block in content)
        for block in content:
            if block.get("type") == "text" and not block.get("text"):
                problems.append(f"message {index}: empty text block")
        results = [b["tool_use_id"] for b in content if b.get("type") == "tool_result"]
        if results:
            previous = messages[index - 1]["content"] if index else []
            asked = [b["id"] for b in previous if b.get("type") == "tool_use"]
            if sorted(results) != sorted(asked):
                problems.append(
                    f"message {index}: tool_result ids {results} != tool_use ids {asked}"
                )
        elif index and msg["role"] == "user":
            previous = messages[index - 1]["content"]
            if any(b.get("type") == "tool_use" for b in previous if isinstance(previous, list)):
                problems.append(f"message {index}: tool_use without tool_result")
    if marks > 4:
        problems.append(f"{marks} cache_control breakpoints (at most 4)")
    return problems


class FakeAnthropic:
    """The server; use as a context manager, `base_url` for ANTHROPIC_BASE_URL."""

    def __init__(self, script: list[Step] | None = None) -> None:
        self.script: list[Step] = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    problems = check_request(body) if self.path == "/v1/messages" else ["bad path"]
                    fake.problems += problems
                    step = fake.script.pop(0) if fake.script and not problems else None
                if problems:
                    step = Error(400, "invalid_request_error", "; ".join(problems))
                elif step is None:
                    step = Error(500, "api_error", "script exhausted")
                if isinstance(step, Error):
                    payload = {
                        "type": "error",
                        "error": {"type": step.error_type, "message": step.message},
                    }
                    self._send(step.status, payload, step.headers)
                else:
                    self._send(200, step(body) if callable(step) else step, {})

            def _send(self, status: int, payload: dict, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to give the SDK (without /v1)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
