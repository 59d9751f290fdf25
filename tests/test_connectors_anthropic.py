"""The Anthropic connector against a fake Admin API (usage and cost reports) on 127.0.0.1."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import Engine, select

from storage.connectors import AnthropicConfig, ConnectorError, sync_source
from storage.connectors.base import HttpPolicy
from storage.models import cost_line_items, ingest_slices
from tests.fake_anthropic_admin import COST_PATH, USAGE_PATH, FakeAnthropicAdmin

NOW = datetime(2026, 11, 20, 9, 30)
ORG = "8f1a2b3c-acme"
SONNET = "claude-sonnet-5-5"
HAIKU = "claude-haiku-4-5"
# Dollars per token by model and token type; batch is half price.
PRICE = {
    SONNET: {
        "uncached_input_tokens": 3e-6,
        "output_tokens": 15e-6,
        "cache_read_input_tokens": 0.3e-6,
        "cache_creation.ephemeral_5m_input_tokens": 3.75e-6,
    },
    HAIKU: {
        "uncached_input_tokens": 1e-6,
        "output_tokens": 5e-6,
        "cache_read_input_tokens": 0.1e-6,
        "cache_creation.ephemeral_5m_input_tokens": 1.25e-6,
    },
}
USAGE_ARG = {
    "uncached_input_tokens": "uncached_input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens": "cache_5m",
}


def cents(dollars: float) -> str:
    """A cost report amount: cents as a decimal string."""
    return str((Decimal(str(dollars)) * 100).quantize(Decimal("0.0001")))


def seed(fake: FakeAnthropicAdmin, first: date, last: date, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    expect: dict = {"by_month": defaultdict(Decimal), "rows": 0, "tokens": {}}
    day = first
    while day <= last:
        month = f"{day:%Y-%m}"
        for workspace, model, tier in (
            ("wrkspc_search", SONNET, "standard"),
            ("wrkspc_search", SONNET, "batch"),
            ("wrkspc_research", HAIKU, "standard"),
            (None, HAIKU, "standard"),
        ):
            tokens = {kind: int(rng.integers(10_000, 5_000_000)) for kind in USAGE_ARG}
            fake.add_usage(
                day,
                workspace,
                model,
                service_tier=tier,
                web_search_requests=7 if workspace == "wrkspc_search" else 0,
                **{USAGE_ARG[kind]: count for kind, count in tokens.items()},
            )
            for kind, count in tokens.items():
                amount = cents(count * PRICE[model][kind] * (0.5 if tier == "batch" else 1.0))
                fake.add_cost(day, workspace, model, kind, amount, service_tier=tier)
                expect["by_month"][month] += Decimal(amount) / 100
                expect["rows"] += 1
                expect["tokens"][(day, workspace, model, tier, kind)] = count
        # Web search: 14 requests in the search workspace (7 per tier), $10 per 1,000.
        fake.add_cost(
            day,
            "wrkspc_search",
            None,
            None,
            "14.0",
            cost_type="web_search",
            service_tier=None,
            context_window=None,
        )
        expect["by_month"][month] += Decimal("0.14")
        expect["rows"] += 1
        day += timedelta(days=1)
    return expect


def config(fake: FakeAnthropicAdmin) -> AnthropicConfig:
    return AnthropicConfig(
        admin_key=fake.admin_key,
        organization_id=ORG,
        base_url=fake.url,
        policy=HttpPolicy(retries=2, backoff=0.0),
        page_days=10,
    )


def billed_by_month(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(cost_line_items.c.billing_period_start, cost_line_items.c.billed_cost)
        ).all()
    totals: dict[str, float] = defaultdict(float)
    for period, billed in rows:
        totals[f"{period:%Y-%m}"] += float(billed)
    return dict(totals)


@pytest.fixture
def fake():
    with FakeAnthropicAdmin() as server:
        yield server


def test_sync_matches_the_reports_totals_and_tokens(fake: FakeAnthropicAdmin, engine: Engine):
    expect = seed(fake, date(2026, 10, 1), date(2026, 11, 20))
    result = sync_source(engine, "anthropic", config(fake), now=NOW)
    assert fake.problems == []
    assert billed_by_month(engine) == pytest.approx(
        {month: float(total) for month, total in expect["by_month"].items()}
    )
    assert result.report.rows == expect["rows"]
    # 31 October days in pages of 10 are 4 pages; 1-20 November, 2.
    assert len(fake.requests_to(COST_PATH)) == len(fake.requests_to(USAGE_PATH)) == 6
    with engine.connect() as connection:
        rows = connection.execute(select(cost_line_items)).all()
        slices = connection.execute(select(ingest_slices)).all()
    by_key = {(r.charge_period_start.date(), r.sub_account_id, r.sku_price_id): r for r in rows}
    day = date(2026, 10, 9)
    for tier in ("standard", "batch"):
        kind = "output_tokens"
        row = by_key[(day, "wrkspc_search", f"{SONNET}:{kind}:{tier}:0-200k")]
        assert row.consumed_quantity == expect["tokens"][(day, "wrkspc_search", SONNET, tier, kind)]
        assert row.consumed_unit == "Tokens" and row.sku_id == SONNET
    default = by_key[(day, None, f"{HAIKU}:cache_read_input_tokens:standard:0-200k")]
    assert default.sub_account_name == "Default workspace"
    search = by_key[(day, "wrkspc_search", "web_search")]
    assert (search.consumed_quantity, search.consumed_unit, search.sku_id) == (
        14,
        "Requests",
        "web_search",
    )
    assert {(s.provider_name, s.billing_account_id, s.source) for s in slices} == {
        ("Anthropic", ORG, "anthropic admin api (cost+usage reports)")
    }


def test_resync_is_idempotent(fake: FakeAnthropicAdmin, sqlite_engine: Engine):
    expect = seed(fake, date(2026, 10, 20), date(2026, 11, 19))
    for _ in range(3):
        sync_source(sqlite_engine, "anthropic", config(fake), now=NOW)
    assert billed_by_month(sqlite_engine) == pytest.approx(
        {month: float(total) for month, total in expect["by_month"].items()}
    )


def test_overloaded_then_failing_page_leaves_the_store_as_it_was(
    fake: FakeAnthropicAdmin, sqlite_engine: Engine
):
    expect = seed(fake, date(2026, 10, 1), date(2026, 11, 20))
    fake.fail(USAGE_PATH, 529, times=2)  # overloaded twice, then fine: retried through
    sync_source(sqlite_engine, "anthropic", config(fake), now=NOW)
    fake.add_cost(date(2026, 11, 2), None, HAIKU, "output_tokens", "99999")
    before = len(fake.requests_to(USAGE_PATH))
    fake.fail(USAGE_PATH, 500, times=None, after_requests=5)  # November's second page
    with pytest.raises(ConnectorError, match="HTTP 500"):
        sync_source(sqlite_engine, "anthropic", config(fake), now=NOW)
    assert len(fake.requests_to(USAGE_PATH)) - before == 5 + 3  # 1 try and 2 retries
    assert billed_by_month(sqlite_engine) == pytest.approx(
        {month: float(total) for month, total in expect["by_month"].items()}
    )
