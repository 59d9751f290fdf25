"""The OpenAI connector against a fake Costs/Usage API on 127.0.0.1 with paged, documented JSON."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

from storage.connectors import ConnectorError, OpenAIConfig, sync_source
from storage.connectors.base import HttpPolicy
from storage.models import cost_line_items
from tests.fake_openai_admin import COSTS_PATH, USAGE_PATHS, FakeOpenAIAdmin

NOW = datetime(2026, 11, 20, 9, 30)
ORG = "org-acme"
PROJECTS = ("proj_search", "proj_research", None)
PRICES = {"input": 2.5e-6, "cached input": 1.25e-6, "output": 10e-6}
GPT = "gpt-4o-2024-08-06"
EMBED = "text-embedding-3-small"
IMAGE = "dall-e-3"


def seed(fake: FakeOpenAIAdmin, first: date, last: date, seed: int = 1) -> dict:
    """Fill the fake with daily usage and its cost; return independently kept expectations."""
    rng = np.random.default_rng(seed)
    expect: dict = {"by_month": defaultdict(float), "rows": 0, "tokens": {}}
    day = first
    while day <= last:
        month = f"{day:%Y-%m}"
        for project in PROJECTS:
            inp, cached, out = (int(x) for x in rng.integers(1_000_000, 9_000_000, 3))
            cached = min(cached, inp // 2)
            fake.add_usage(
                "completions",
                day,
                project_id=project,
                model=GPT,
                input_tokens=inp,
                input_cached_tokens=cached,
                output_tokens=out,
                num_model_requests=int(rng.integers(100, 900)),
                user_id=None,
                api_key_id=None,
                batch=None,
                input_audio_tokens=0,
                output_audio_tokens=0,
            )
            for kind, tokens in (
                ("input", inp - cached),
                ("cached input", cached),
                ("output", out),
            ):
                value = round(tokens * PRICES[kind], 6)
                fake.add_cost(day, project, f"{GPT}, {kind}", value)
                expect["by_month"][month] += value
                expect["rows"] += 1
                expect["tokens"][(day, project, kind)] = tokens
            emb = int(rng.integers(100_000, 2_000_000))
            fake.add_usage("embeddings", day, project_id=project, model=EMBED, input_tokens=emb)
            fake.add_cost(day, project, f"{EMBED}, input", round(emb * 0.02e-6, 8))
            expect["by_month"][month] += round(emb * 0.02e-6, 8)
            expect["rows"] += 1
        images = int(rng.integers(1, 40))
        fake.add_usage("images", day, project_id="proj_search", model=IMAGE, images=images)
        fake.add_cost(day, "proj_search", f"{IMAGE}, hd 1024x1024", images * 0.08)
        expect["by_month"][month] += images * 0.08
        expect["rows"] += 1
        expect["tokens"][(day, "proj_search", "images")] = images
        day += timedelta(days=1)
    # A line item the Usage API has no quantity for.
    fake.add_cost(date(2026, 10, 15), "proj_research", "ft-gpt-4o, training", 25.0)
    expect["by_month"]["2026-10"] += 25.0
    expect["rows"] += 1
    return expect


def config(fake: FakeOpenAIAdmin, **kw: object) -> OpenAIConfig:
    return OpenAIConfig(
        admin_key=fake.admin_key,
        organization_id=ORG,
        base_url=fake.url,
        policy=HttpPolicy(retries=2, backoff=0.0),
        page_days=7,
        **kw,
    )


def billed_by_month(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT billing_period_start, sum(billed_cost), sum(effective_cost) "
                "FROM cost_line_items WHERE provider_name = 'OpenAI' GROUP BY 1"
            )
        ).all()
    for _, billed, effective in rows:
        assert float(billed) == pytest.approx(float(effective))
    return {str(period)[:7]: float(billed) for period, billed, _ in rows}


@pytest.fixture
def fake():
    with FakeOpenAIAdmin() as server:
        yield server


def test_sync_loads_every_page_with_totals_and_tokens(fake: FakeOpenAIAdmin, engine: Engine):
    # September is outside the window (current and previous month): never asked for.
    expect = seed(fake, date(2026, 9, 25), date(2026, 11, 20))
    september = expect["by_month"].pop("2026-09")
    result = sync_source(engine, "openai", config(fake), now=NOW)

    assert fake.problems == []
    assert [f"{m:%Y-%m}" for m in result.months] == ["2026-10", "2026-11"]
    totals = billed_by_month(engine)
    assert totals == pytest.approx(dict(expect["by_month"]))
    assert september > 0 and "2026-09" not in totals
    # 31 October days in pages of 7 is 5 pages; 1-20 November is 3.
    assert len(fake.requests_to(COSTS_PATH)) == 5 + 3
    for path in USAGE_PATHS.values():
        assert len(fake.requests_to(path)) == 8
    with engine.connect() as connection:
        rows = connection.execute(select(cost_line_items)).all()
        slices = connection.execute(
            text("SELECT billing_account_id, source, row_count FROM ingest_slices")
        ).all()
    # September 25-30 had 6 days of 4 line items for 3 projects plus an image line item.
    assert len(rows) == expect["rows"] - 6 * (4 * 3 + 1)
    quantity = {
        (r.charge_period_start.date(), r.sub_account_id, r.sku_price_id): r.consumed_quantity
        for r in rows
    }
    day = date(2026, 11, 3)
    for kind in ("input", "cached input", "output"):
        key = (day, "proj_research", f"{GPT}, {kind}")
        assert quantity[key] == expect["tokens"][(day, "proj_research", kind)]
    assert (
        quantity[(day, "proj_search", f"{IMAGE}, hd 1024x1024")]
        == (expect["tokens"][(day, "proj_search", "images")])
    )
    assert quantity[(date(2026, 10, 15), "proj_research", "ft-gpt-4o, training")] is None
    assert {r.sku_id for r in rows} == {GPT, EMBED, IMAGE, "ft-gpt-4o"}
    assert {(s.billing_account_id, s.source) for s in slices} == {(ORG, "openai costs+usage api")}
    assert sum(s.row_count for s in slices) == len(rows)


def test_resync_replaces_months_and_picks_up_restatements(fake: FakeOpenAIAdmin, sqlite_engine):
    expect = seed(fake, date(2026, 10, 1), date(2026, 11, 20))
    sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    again = sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    assert again.report.replaced_slices == 2
    assert billed_by_month(sqlite_engine) == pytest.approx(dict(expect["by_month"]))
    # A late restatement: OpenAI adds a cost to October 2 after the fact.
    fake.add_cost(date(2026, 10, 2), "proj_search", f"{GPT}, output", 100.0)
    sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    totals = billed_by_month(sqlite_engine)
    assert totals["2026-10"] == pytest.approx(expect["by_month"]["2026-10"] + 100.0)
    assert totals["2026-11"] == pytest.approx(expect["by_month"]["2026-11"])


def test_failed_page_leaves_the_store_as_it_was(fake: FakeOpenAIAdmin, sqlite_engine):
    expect = seed(fake, date(2026, 10, 1), date(2026, 11, 20))
    sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    fake.add_cost(date(2026, 11, 5), "proj_search", f"{GPT}, output", 500.0)
    before = len(fake.requests_to(USAGE_PATHS["images"]))
    # The third page of November's image usage fails on every try.
    fake.fail(USAGE_PATHS["images"], 503, times=None, after_requests=5 + 2)
    with pytest.raises(ConnectorError, match="503"):
        sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    # October's 5 pages, November's first 2, then 1 try and 2 retries of the third.
    assert len(fake.requests_to(USAGE_PATHS["images"])) - before == 5 + 2 + 3
    assert billed_by_month(sqlite_engine) == pytest.approx(dict(expect["by_month"]))


def test_throttling_is_retried_after_the_servers_wait(fake: FakeOpenAIAdmin, sqlite_engine):
    expect = seed(fake, date(2026, 11, 1), date(2026, 11, 20))
    fake.fail(COSTS_PATH, 429, times=1, headers={"Retry-After": "1"}, after_requests=1)
    started = time.monotonic()
    sync_source(sqlite_engine, "openai", config(fake), now=NOW)
    assert time.monotonic() - started >= 1.0
    assert billed_by_month(sqlite_engine) == pytest.approx(dict(expect["by_month"]))


def test_bad_key_is_not_retried_and_says_what_to_check(fake: FakeOpenAIAdmin, sqlite_engine):
    seed(fake, date(2026, 11, 1), date(2026, 11, 2))
    bad = OpenAIConfig(admin_key="wrong", base_url=fake.url, policy=HttpPolicy(retries=3))
    with pytest.raises(ConnectorError, match="HTTP 401") as raised:
        sync_source(sqlite_engine, "openai", bad, now=NOW)
    assert "admin key" in str(raised.value)
    assert "wrong" not in str(raised.value)
    assert len(fake.requests) == 1
