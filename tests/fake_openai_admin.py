"""A fake OpenAI organization Costs and Usage API on 127.0.0.1, answering the documented JSON.

Buckets are one day wide; a page holds at most `limit` buckets (days with no data included, as
the real API returns them) and `next_page` is an opaque cursor. Requests are recorded and checked
(admin key, bucket width, group_by, limit range); `fail(path, status, times, headers)` scripts
errors such as 429 with Retry-After, or a page that never succeeds.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Failure:
    """Answer `status` to the next `times` requests for `path` (None: for ever)."""

    path: str
    status: int
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    after_requests: int = 0  # let this many matching requests through first
    seen: int = 0


class BucketServer:
    """Shared machinery: day buckets, cursor paging, scripted failures, a request log."""

    problems: list[str]

    def __init__(self) -> None:
        self.buckets: dict[str, dict[date, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.failures: list[Failure] = []
        self.problems = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- scripting ---------------------------------------------------------------------------
    def fail(
        self,
        path: str,
        status: int,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        after_requests: int = 0,
    ) -> None:
        """Script an error answer for requests to `path`."""
        self.failures.append(Failure(path, status, times, headers or {}, after_requests))

    def requests_to(self, path: str) -> list[dict[str, list[str]]]:
        """The query parameters of every request to `path`, in order."""
        return [query for seen, query in self.requests if seen == path]

    # -- subclass hooks ----------------------------------------------------------------------
    def authorized(self, headers: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def window(self, query: dict[str, list[str]]) -> tuple[date, date]:  # pragma: no cover
        raise NotImplementedError

    def check(self, path: str, query: dict[str, list[str]]) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def bucket(self, path: str, day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover

    def error(self, status: int) -> dict[str, Any]:
        return {"error": {"message": f"scripted {status}", "type": "server_error"}}

    # -- HTTP --------------------------------------------------------------------------------
    def answer(
        self, path: str, query: dict[str, list[str]], headers: Any
    ) -> tuple[int, dict, dict]:
        with self._lock:
            self.requests.append((path, query))
            if not self.authorized(headers):
                return 401, {"error": {"message": "invalid admin key"}}, {}
            for failure in list(self.failures):
                if failure.path != path:
                    continue
                failure.seen += 1
                if failure.seen <= failure.after_requests:
                    break
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure.status, self.error(failure.status), failure.headers
            problem = self.check(path, query)
            if problem:
                self.problems.append(problem)
                return 400, {"error": {"message": problem}}, {}
            if path not in self.buckets:
                return 404, {"error": {"message": f"no such path {path}"}}, {}
            start, end = self.window(query)
            limit = int(query.get("limit", ["7"])[0])
            offset = int(base64.b64decode(query["page"][0]).decode()) if "page" in query else 0
            days = [start + timedelta(days=i) for i in range((end - start).days)]
            chosen = days[offset : offset + limit]
            more = offset + limit < len(days)
            data = [self.bucket(path, day, list(self.buckets[path].get(day, []))) for day in chosen]
            cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else None
            return 200, {"data": data, "has_more": more, "next_page": cursor}, {}

    def __enter__(self) -> BucketServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                status, body, headers = fake.answer(
                    parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers
                )
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """The base URL to give the connector (no /v1)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"


USAGE_PATHS = {
    name: f"/v1/organization/usage/{name}"
    for name in ("completions", "embeddings", "images", "audio_speeches", "audio_transcriptions")
}
COSTS_PATH = "/v1/organization/costs"


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class FakeOpenAIAdmin(BucketServer):
    """The Costs API and the Usage API endpoints spendbot reads."""

    def __init__(self, admin_key: str = "sk-admin-test") -> None:
        super().__init__()
        self.admin_key = admin_key
        self.buckets[COSTS_PATH]
        for path in USAGE_PATHS.values():
            self.buckets[path]

    def add_cost(self, day: date, project_id: str | None, line_item: str, value: float) -> None:
        """One Costs API result (grouped by project_id and line_item)."""
        self.buckets[COSTS_PATH][day].append(
            {
                "object": "organization.costs.result",
                "amount": {"value": value, "currency": "usd"},
                "line_item": line_item,
                "project_id": project_id,
            }
        )

    def add_usage(self, endpoint: str, day: date, **result: Any) -> None:
        """One Usage API result (grouped by project_id and model)."""
        self.buckets[USAGE_PATHS[endpoint]][day].append(
            {"object": f"organization.usage.{endpoint}.result", **result}
        )

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.admin_key}"

    def window(self, query: dict[str, list[str]]) -> tuple[date, date]:
        start = datetime.fromtimestamp(int(query["start_time"][0]), UTC).date()
        end = datetime.fromtimestamp(int(query["end_time"][0]), UTC).date()
        return start, end

    def check(self, path: str, query: dict[str, list[str]]) -> str | None:
        if "start_time" not in query or "end_time" not in query:
            return "start_time and end_time are required"
        if query.get("bucket_width", ["1d"]) != ["1d"]:
            return "bucket_width must be 1d"
        limit = int(query.get("limit", ["7"])[0])
        if not 1 <= limit <= (180 if path == COSTS_PATH else 31):
            return f"limit {limit} out of range"
        wanted = {"project_id", "line_item"} if path == COSTS_PATH else {"project_id", "model"}
        if set(query.get("group_by", [])) != wanted:
            return f"{path}: expected group_by {sorted(wanted)}, got {query.get('group_by')}"
        return None

    def bucket(self, path: str, day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "object": "bucket",
            "start_time": _unix(day),
            "end_time": _unix(day + timedelta(days=1)),
            "results": results,
        }

    def answer(
        self, path: str, query: dict[str, list[str]], headers: Any
    ) -> tuple[int, dict, dict]:
        status, body, extra = super().answer(path, query, headers)
        if status == 200:
            body = {"object": "page", **body}
        return status, body, extra
