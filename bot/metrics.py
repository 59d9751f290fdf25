"""Prometheus metrics: one registry per server, the request middleware and the /metrics route.

Each `Metrics` holds its own `CollectorRegistry` rather than prometheus-client's global one, so
two servers in one process (tests, or a bot with an embedded scheduler) never clash.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from bot.observer import Observer

METRICS_PATH = "/metrics"
TOKEN_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics(Observer):
    """The counters and histograms of one process; other parts report through its methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "spendbot_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "spendbot_http_request_duration_seconds",
            "Time to answer an HTTP request (for Slack: the ack).",
            ["route"],
            registry=self.registry,
        )
        self.skill_seconds = Histogram(
            "spendbot_skill_duration_seconds",
            "Skill calls through the execution path, by skill and outcome.",
            ["skill", "outcome"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "spendbot_llm_tokens",
            "LLM tokens used, by model and kind.",
            ["model", "kind"],
            registry=self.registry,
        )
        self.llm_cost = Counter(
            "spendbot_llm_cost_usd",
            "List-price dollar cost of LLM usage, by model (unpriced models add nothing).",
            ["model"],
            registry=self.registry,
        )
        self.ingest = Counter(
            "spendbot_ingest_rows",
            "Rows loaded, by source (a connector, or gpu_agent for GPU samples).",
            ["source"],
            registry=self.registry,
        )
        self.scheduler = Counter(
            "spendbot_scheduler_runs",
            "Scheduled job runs, by job and outcome.",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "spendbot_errors",
            "Unexpected failures, by where they happened.",
            ["where"],
            registry=self.registry,
        )

    # Reports from the rest of spendbot ---------------------------------------------------------

    def skill_ran(self, skill: str, outcome: str, seconds: float) -> None:
        """One skill call finished; an incident also counts as an error."""
        self.skill_seconds.labels(skill, outcome).observe(seconds)
        if outcome == "incident":
            self.failed("skill")

    def llm_used(self, usage: dict[str, Any]) -> None:
        """Tokens (and cost, when the model is priced) of one LLM answer."""
        model = str(usage.get("model") or "unknown")
        for kind in TOKEN_KINDS:
            self.llm_tokens.labels(model, kind).inc(usage.get(kind) or 0)
        if usage.get("cost_usd") is not None:
            self.llm_cost.labels(model).inc(usage["cost_usd"])

    def ingest_rows(self, source: str, rows: int) -> None:
        """`rows` rows were loaded from `source` (a connector name, or gpu_agent)."""
        self.ingest.labels(source).inc(rows)

    def scheduler_run(self, job: str, outcome: str) -> None:
        """A job of kind `job` ran: ok, failed, missed, or skipped (another replica held it)."""
        self.scheduler.labels(job, outcome).inc()
        if outcome == "failed":
            self.failed("scheduler")

    def failed(self, where: str) -> None:
        """An unexpected failure in `where` (skill, scheduler, slack, http)."""
        self.errors.labels(where).inc()

    # HTTP -------------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every request by its route pattern (never the raw path)."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except Exception:
            self.failed("http")
            raise
        finally:
            self.requests.labels(request.method, route, str(status)).inc()
            self.request_seconds.labels(route).observe(time.perf_counter() - started)

    def add_routes(self, app: web.Application) -> None:
        """Serve the metrics in Prometheus text format at /metrics."""

        async def scrape(_: web.Request) -> web.Response:
            body = generate_latest(self.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get(METRICS_PATH, scrape)
