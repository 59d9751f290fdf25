"""The digest's idle-GPU line from the ledger and open stop requests, checked by hand arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from storage import actions
from storage.connectors.base import focus_frame
from storage.gpu_savings import Stop, record
from storage.ingest import ingest_frame
from tests.conftest import make_assistant
from tests.gpu_billing import usage_row

NOW = datetime(2026, 11, 25, 12)  # a Wednesday: "last week" is 2026-11-16..22


def bill(*instances: tuple[str, str, dict[datetime, float]]) -> pd.DataFrame:
    """One billing export: for each (instance, team, {day: cost}), a row per day."""
    return focus_frame(
        [
            usage_row(instance, day, cost, 24.0, team=team, description="g5.xlarge usage")
            for instance, team, costs in instances
            for day, cost in costs.items()
        ]
    )


def days(first: int, last: int, month: int = 11) -> list[datetime]:
    return [datetime(2026, month, day) for day in range(first, last + 1)]


def stop(instance: str, at: datetime, hourly: float, owner: str) -> Stop:
    return Stop(None, instance, "AWS", "g5.xlarge", "us-east-1", owner, at, hourly, "USD", "test")


def pending_stop(engine: Engine, daily: list[float], owner: str) -> None:
    targets = [
        {"id": f"i-{owner}{i}", "owner": owner, "daily_cost": cost, "currency": "USD"}
        for i, cost in enumerate(daily)
    ]
    with engine.begin() as connection:
        actions.create(
            connection, skill="gpu_stop", risk="destructive", args_json="{}", summary="Stop",
            targets=targets, impact="", team=owner, requested_by="scheduler",
            requested_at=NOW - timedelta(hours=1), expires_at=NOW + timedelta(hours=23),
            approvals_required=1, allow_self_approval=False, approver_role="finops",
            state="pending", state_changed_at=NOW - timedelta(hours=1),
        )  # fmt: skip


def test_the_digest_adds_waste_stops_and_billed_savings(sqlite_engine: Engine) -> None:
    a = {day: 24.0 for day in days(3, 9)} | dict.fromkeys(days(11, 22), 2.0)
    b = {day: 60.0 for day in days(11, 17)} | dict.fromkeys(days(19, 20), 10.0)
    c = {day: 30.0 for day in days(10, 16)}
    # i-a: $24/day, stopped 2026-11-10, then $2/day: last week saves 7 x (24 - 2) = 154.
    # i-b: $60/day, stopped 2026-11-18 (last week), then billed $10 on 19 and 20: 2 x 50 = 100.
    # i-c: research's, stopped last week too, not billed since.
    frame = bill(("i-a", "search", a), ("i-b", "search", b), ("i-c", "research", c))
    ingest_frame(sqlite_engine, frame, "t")
    with sqlite_engine.begin() as connection:
        record(connection, stop("i-a", datetime(2026, 11, 10, 15), 1.0, "search"))
        record(connection, stop("i-b", datetime(2026, 11, 18, 6), 2.5, "search"))
        record(connection, stop("i-c", datetime(2026, 11, 17, 9), 1.25, "research"))
        # Stopped after the period: neither counted nor realized in it.
        record(connection, stop("i-d", datetime(2026, 11, 24, 9), 9.0, "search"))
    pending_stop(sqlite_engine, [21.6, 786.54], "search")
    pending_stop(sqlite_engine, [10.0], "research")

    bot = make_assistant(sqlite_engine, NOW)
    everything = bot.ask("weekly digest", "terminal:alice").reply
    assert not everything.is_error, everything.text
    assert everything.data["idle_gpus"] == {
        "wasted_per_day": 818.14,  # 21.60 + 786.54 + 10.00
        "waiting": 3,
        "stopped": 2,  # i-b and i-c
        "saving_per_day": 90.0,  # (2.5 + 1.25) x 24
        "realized": 254.0,  # 154 + 100 (i-c has no billed day after its stop)
    }
    assert everything.text.splitlines()[-1] == (
        "Idle GPUs: $818.14/day wasted now; stopped 2, saving $90.00/day; realized $254.00 "
        f"{everything.data['period']['label']}."
    )
    search = bot.ask("weekly digest for team search", "terminal:alice").reply
    assert search.data["idle_gpus"] == {
        "wasted_per_day": 808.14,
        "waiting": 2,
        "stopped": 1,
        "saving_per_day": 60.0,
        "realized": 254.0,
    }


def test_a_digest_without_gpu_activity_has_no_idle_gpu_line(sqlite_engine: Engine) -> None:
    ingest_frame(sqlite_engine, bill(("i-a", "search", dict.fromkeys(days(16, 22), 5.0))), "t")
    reply = make_assistant(sqlite_engine, NOW).ask("weekly digest", "terminal:alice").reply
    assert not reply.is_error, reply.text
    assert "idle_gpus" not in reply.data and "Idle GPUs" not in reply.text
