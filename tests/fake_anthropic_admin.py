"""A fake Anthropic Admin API (usage and cost reports) on 127.0.0.1, answering the documented JSON.

Cost amounts are decimal strings in cents, as the API sends them; `limit` is at most 31 daily
buckets; `next_page` is an opaque cursor. Requests are recorded and checked (x-api-key,
anthropic-version, group_by[] values); errors are scripted as in the OpenAI fake.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.fake_openai_admin import BucketServer

COST_PATH = "/v1/organizations/cost_report"
USAGE_PATH = "/v1/organizations/usage_report/messages"


def _rfc3339(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _date(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()


class FakeAnthropicAdmin(BucketServer):
    """The messages usage report and the cost report."""

    def __init__(self, admin_key: str = "sk-ant-admin01-test") -> None:
        super().__init__()
        self.admin_key = admin_key
        self.buckets[COST_PATH]
        self.buckets[USAGE_PATH]

    def add_cost(
        self,
        day: date,
        workspace_id: str | None,
        model: str | None,
        token_type: str | None,
        cents: str,
        *,
        cost_type: str = "tokens",
        service_tier: str | None = "standard",
        context_window: str | None = "0-200k",
        description: str | None = None,
    ) -> None:
        """One cost report result (grouped by workspace_id and description)."""
        self.buckets[COST_PATH][day].append(
            {
                "currency": "USD",
                "amount": cents,
                "workspace_id": workspace_id,
                "description": description
                or (f"{model} {token_type}" if model else cost_type.replace("_", " ")),
                "cost_type": cost_type,
                "context_window": context_window,
                "model": model,
                "service_tier": service_tier,
                "token_type": token_type,
                "inference_geo": None,
            }
        )

    def add_usage(
        self,
        day: date,
        workspace_id: str | None,
        model: str,
        *,
        uncached_input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cache_5m: int = 0,
        cache_1h: int = 0,
        web_search_requests: int = 0,
        service_tier: str = "standard",
        context_window: str = "0-200k",
    ) -> None:
        """One messages usage result (grouped by workspace, model, tier and context window)."""
        self.buckets[USAGE_PATH][day].append(
            {
                "uncached_input_tokens": uncached_input_tokens,
                "cache_creation": {
                    "ephemeral_1h_input_tokens": cache_1h,
                    "ephemeral_5m_input_tokens": cache_5m,
                },
                "cache_read_input_tokens": cache_read_input_tokens,
                "output_tokens": output_tokens,
                "server_tool_use": {"web_search_requests": web_search_requests},
                "api_key_id": None,
                "workspace_id": workspace_id,
                "model": model,
                "service_tier": service_tier,
                "context_window": context_window,
            }
        )

    def authorized(self, headers: Any) -> bool:
        return headers.get("x-api-key") == self.admin_key and bool(headers.get("anthropic-version"))

    def window(self, query: dict[str, list[str]]) -> tuple[date, date]:
        return _date(query["starting_at"][0]), _date(query["ending_at"][0])

    def check(self, path: str, query: dict[str, list[str]]) -> str | None:
        if "starting_at" not in query or "ending_at" not in query:
            return "starting_at is required (ending_at too, for this fake)"
        if query.get("bucket_width", ["1d"]) != ["1d"]:
            return "bucket_width must be 1d"
        limit = int(query.get("limit", ["7"])[0])
        if not 1 <= limit <= 31:
            return f"limit {limit} out of range"
        wanted = (
            {"workspace_id", "description"}
            if path == COST_PATH
            else {"workspace_id", "model", "service_tier", "context_window"}
        )
        if set(query.get("group_by[]", [])) != wanted:
            return f"{path}: expected group_by[] {sorted(wanted)}, got {query.get('group_by[]')}"
        return None

    def bucket(self, path: str, day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "starting_at": _rfc3339(day),
            "ending_at": _rfc3339(day + timedelta(days=1)),
            "results": results,
        }

    def error(self, status: int) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error", "message": f"scripted {status}"}}
