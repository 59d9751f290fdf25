"""The digest names anomaly owners as the anomaly alerts do: tag, then allocation rule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from storage import allocation
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.test_digest import DIGEST, FRAME, NOW

P5 = FRAME["ChargeDescription"].fillna("").str.contains("p5.48xlarge", regex=False)
UNTAGGED = FRAME.drop(columns=["day", "team"])
UNTAGGED.loc[P5, "Tags"] = None
"""The digest's demo data with the planted GPU spike's tags removed: only a rule can own it."""


def resource_anomaly(engine: Engine) -> dict:
    reply = make_assistant(engine, NOW).execute(DIGEST, {}, "test:user")
    assert not reply.is_error, reply.text
    [anomaly] = [a for a in reply.data["anomalies"] if a["dimension"] == "resource"]
    return anomaly


def test_an_allocation_rule_names_the_owner_of_an_untagged_anomaly(sqlite_engine: Engine) -> None:
    ingest_frame(sqlite_engine, UNTAGGED, "demo")
    [resource] = FRAME.loc[P5, "ResourceId"].unique()
    [account] = FRAME.loc[P5, "SubAccountId"].unique()

    before = resource_anomaly(sqlite_engine)
    assert (before["key"], before["owner"]) == (resource, None)

    with sqlite_engine.begin() as connection:
        allocation.add_rule(
            connection,
            owner="ml-platform",
            criteria={"sub_account": account},
            by="test",
            at=datetime(2026, 11, 1),
        )
    after = resource_anomaly(sqlite_engine)
    assert (after["key"], after["owner"]) == (resource, "ml-platform")
