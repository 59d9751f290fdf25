"""The Cost Explorer connector against moto's GetCostAndUsage, seeded in the documented shape."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests
from moto import mock_aws
from sqlalchemy import Engine, select

from storage.connectors import CostExplorerConfig, sync_source
from storage.models import cost_line_items, cost_tags, ingest_slices

NOW = datetime(2026, 11, 20, 6, 0)
PROD, DEV = "314159265358", "271828182845"


def metrics(unblended: float, amortized: float) -> dict:
    return {
        "UnblendedCost": {"Amount": str(unblended), "Unit": "USD"},
        "AmortizedCost": {"Amount": str(amortized), "Unit": "USD"},
    }


def accounts(days: list[str]) -> dict:
    """The first query of a month: grouped by linked account, names in the attributes."""
    return {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day, "End": day},
                "Total": {},
                "Groups": [
                    {"Keys": [PROD], "Metrics": metrics(1, 1)},
                    {"Keys": [DEV], "Metrics": metrics(1, 1)},
                ],
                "Estimated": True,
            }
            for day in days
        ],
        "DimensionValueAttributes": [
            {"Value": PROD, "Attributes": {"description": "ml-prod"}},
            {"Value": DEV, "Attributes": {"description": "ml-dev"}},
        ],
    }


def by_service_and_team(rows: list[tuple[str, str, str, float, float]], token: str | None = None):
    """A per-account query: grouped by SERVICE and TAG team (keys like 'team$search')."""
    days: dict[str, list] = {}
    for day, service, team, unblended, amortized in rows:
        days.setdefault(day, []).append(
            {"Keys": [service, f"team${team}"], "Metrics": metrics(unblended, amortized)}
        )
    result = {
        "GroupDefinitions": [
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "TAG", "Key": "team"},
        ],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day, "End": day},
                "Total": {},
                "Groups": groups,
                "Estimated": False,
            }
            for day, groups in days.items()
        ],
        "DimensionValueAttributes": [],
    }
    if token:
        result["NextPageToken"] = token
    return result


OCT_PROD_1 = [
    ("2026-10-01", "Amazon Elastic Compute Cloud - Compute", "research", 786.54, 487.65),
    ("2026-10-01", "Amazon Simple Storage Service", "research", 46.0, 46.0),
]
OCT_PROD_2 = [("2026-10-02", "Amazon Elastic Compute Cloud - Compute", "search", 385.28, 385.28)]
OCT_DEV = [
    ("2026-10-01", "Amazon Elastic Compute Cloud - Compute", "", 9.22, 9.22),
    ("2026-10-02", "Tax", "", 3.1, 3.1),
]
NOV_PROD = [("2026-11-01", "Amazon SageMaker", "ml-platform", 36.36, 36.36)]
NOV_DEV = [("2026-11-01", "Amazon Elastic Compute Cloud - Compute", "ml-platform", 136.13, 136.13)]


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        # The order spendbot asks in: per month, accounts, then each account (sorted).
        queue = [
            accounts(["2026-10-01", "2026-10-02"]),
            by_service_and_team(OCT_DEV),
            by_service_and_team(OCT_PROD_1, token="page-2"),
            by_service_and_team(OCT_PROD_2),
            accounts(["2026-11-01"]),
            by_service_and_team(NOV_DEV),
            by_service_and_team(NOV_PROD),
        ]
        response = requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
            json={"results": queue},
            timeout=5,
        )
        assert response.status_code == 201
        yield


def test_cost_explorer_rows_match_the_responses(seeded, sqlite_engine: Engine):
    config = CostExplorerConfig(tag_key="team", billing_account_id="210987654321")
    result = sync_source(sqlite_engine, "aws-cost-explorer", config, now=NOW)
    every = OCT_PROD_1 + OCT_PROD_2 + OCT_DEV + NOV_PROD + NOV_DEV
    assert result.report.rows == len(every)
    with sqlite_engine.connect() as connection:
        rows = connection.execute(select(cost_line_items)).all()
        tags = connection.execute(select(cost_tags.c.key, cost_tags.c.value)).all()
        slices = connection.execute(select(ingest_slices)).all()
    assert sum(float(r.billed_cost) for r in rows) == pytest.approx(sum(r[3] for r in every))
    assert sum(float(r.effective_cost) for r in rows) == pytest.approx(sum(r[4] for r in every))
    assert {(r.sub_account_id, r.sub_account_name) for r in rows} == {
        (PROD, "ml-prod"),
        (DEV, "ml-dev"),
    }
    assert [r.charge_category for r in rows if r.service_name == "Tax"] == ["Tax"]
    # Untagged rows ('team$') carry no tag; the others carry team.
    assert sorted(value for key, value in tags if key == "team") == sorted(
        r[2] for r in every if r[2]
    )
    assert all(r.resource_id is None and r.sku_id is None for r in rows)
    assert {
        (s.billing_account_id, f"{s.billing_period_start:%Y-%m}", s.source) for s in slices
    } == {
        ("210987654321", "2026-10", "aws cost explorer"),
        ("210987654321", "2026-11", "aws cost explorer"),
    }


def test_payer_defaults_to_the_callers_account(seeded, sqlite_engine: Engine):
    sync_source(sqlite_engine, "aws-cost-explorer", CostExplorerConfig(tag_key="team"), now=NOW)
    with sqlite_engine.connect() as connection:
        payers = connection.execute(select(ingest_slices.c.billing_account_id)).scalars().all()
    assert set(payers) == {"123456789012"}  # moto's STS caller account
