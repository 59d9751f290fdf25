"""Off-hours GPU schedules from chat; each fire a guarded stop request for the tagged machines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from skills.gpu_offhours import GpuOffhoursArgs
from storage import schedules
from storage.actions import list_actions
from tests.conftest import make_assistant
from tests.fake_slack import FakeSlack
from tests.guarded_fakes import grant
from tests.test_gpu_fleet import aws, launch, moto_url, quiet, utilization  # noqa: F401
from tests.test_gpu_requests import fake, headlines, scheduled_scan  # noqa: F401


@pytest.mark.parametrize(
    ("now", "text", "when", "first_utc"),
    [
        # Friday noon: off hours start 19:00 Berlin (UTC+1 in November) the same day.
        (
            datetime(2026, 11, 27, 12),
            "stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin",
            "19:00-08:00 Mon, Tue, Wed, Thu, Fri Europe/Berlin",
            datetime(2026, 11, 27, 18),
        ),
        # Saturday: the next weekday is Monday.
        (
            datetime(2026, 11, 28, 12),
            "stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin",
            "19:00-08:00 Mon, Tue, Wed, Thu, Fri Europe/Berlin",
            datetime(2026, 11, 30, 18),
        ),
        (
            datetime(2026, 11, 28, 12),
            "stop GPU instances tagged env=dev 20:00-07:00 every day",
            "20:00-07:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun UTC",
            datetime(2026, 11, 28, 20),
        ),
    ],
)
def test_off_hours_from_chat(
    sqlite_engine: Engine, now: datetime, text: str, when: str, first_utc: datetime
) -> None:
    grant(sqlite_engine, "terminal:fin")
    reply = make_assistant(sqlite_engine, now).ask(text, "terminal:fin").reply
    assert not reply.is_error, reply.text
    [stored] = schedules.list_schedules(sqlite_engine)
    assert (stored.id, stored.kind, stored.when) == ("gpu_offhours:env=dev", "gpu_offhours", when)
    assert stored.next_run == first_utc


def test_off_hours_need_the_finops_role(sqlite_engine: Engine) -> None:
    text = "stop the dev GPU instances 19:00-08:00 Mon-Fri Europe/Berlin"
    reply = make_assistant(sqlite_engine, datetime(2026, 11, 27)).ask(text, "terminal:x").reply
    assert reply.is_error and "finops" in reply.text
    assert schedules.list_schedules(sqlite_engine) == []


def test_a_fire_requests_stopping_the_idle_tagged_machines_only(
    aws: str,  # noqa: F811
    sqlite_engine: Engine,
    fake: FakeSlack,  # noqa: F811
) -> None:
    dev_idle = launch("g5.xlarge", env="dev")
    dev_busy = launch("g5.xlarge", env="dev")
    prod_idle = launch("g5.xlarge", env="prod")
    for machine in (dev_idle, prod_idle):
        utilization(machine, quiet(180))
    utilization(dev_busy, quiet(180) | {10: 70.0})
    scheduler = scheduled_scan(sqlite_engine, fake)  # a scheduler with Slack and the fleet
    args = GpuOffhoursArgs(tag="env=dev", start="19:00", end="08:00", target="#gpu-ops")
    schedules.add(
        sqlite_engine, args.schedule_id, kind="gpu_offhours", target=args.target,
        args={"tag": args.tag, "end": args.end}, trigger=args.trigger(), when=args.when,
        now=datetime(2026, 11, 27),
    )  # fmt: skip
    event = scheduler.fire(args.schedule_id, datetime.now(UTC))
    assert event is not None and event.exception is None, event
    [action] = list_actions(sqlite_engine)
    assert action.state == "pending" and action.requested_by == "scheduler"
    assert [target["id"] for target in action.targets] == [dev_idle]
    assert dev_busy in action.impact  # named as left out, with why
    assert [call.params["channel"] for call in headlines(fake)] == ["#gpu-ops"]
