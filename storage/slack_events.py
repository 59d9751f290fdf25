"""Claims on Slack events, so each event is answered once however often, and wherever, it arrives.

Slack redelivers an event (``X-Slack-Retry-Num``) when it did not see a timely 200, possibly to
another replica. The first delivery inserts a ``claimed`` row keyed by ``event_id``; a later one
finds it and does nothing, unless the claim is older than the lease and still not ``done``: the
replica that took it is taken to have died, and the retry takes the claim over (compare-and-set on
``claimed_at``) and answers instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from storage.models import slack_events

CLAIMED = "claimed"
DONE = "done"

LEASE = timedelta(minutes=2)
"""How long a claim protects an event being answered; Slack's last retry comes about 5 min after."""


def claim(engine: Engine, event_id: str, now: datetime, lease: timedelta = LEASE) -> bool:
    """Whether this delivery of `event_id` should be answered (exactly one caller gets True)."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(slack_events).values(
                    event_id=event_id, state=CLAIMED, claimed_at=now, attempts=1
                )
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as connection:
        taken = connection.execute(
            update(slack_events)
            .where(
                slack_events.c.event_id == event_id,
                slack_events.c.state == CLAIMED,
                slack_events.c.claimed_at <= now - lease,
            )
            .values(claimed_at=now, attempts=slack_events.c.attempts + 1)
        )
    return taken.rowcount == 1


def finish(engine: Engine, event_id: str, now: datetime) -> None:
    """Mark `event_id` answered: no retry of it will be answered again."""
    with engine.begin() as connection:
        connection.execute(
            update(slack_events)
            .where(slack_events.c.event_id == event_id)
            .values(state=DONE, done_at=now)
        )
