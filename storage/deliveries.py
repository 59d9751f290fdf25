"""Claims on chat deliveries, so each is answered once however often, and wherever, it arrives.

Slack redelivers an event (``X-Slack-Retry-Num``) and the Bot Framework an activity when it did
not see a timely response, possibly to another replica. The first delivery inserts a ``claimed``
row keyed by the delivery's id (Slack's ``event_id``; ``teams:`` and a digest for Teams); a later
one finds it and does nothing, unless the claim is older than the lease and still not ``done``:
the replica that took it is taken to have died, and the retry takes the claim over
(compare-and-set on ``claimed_at``) and answers instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from storage.models import slack_events as deliveries

CLAIMED = "claimed"
DONE = "done"

LEASE = timedelta(minutes=2)
"""How long a claim protects a delivery being answered; Slack's last retry comes about 5 min after."""


def claim(engine: Engine, key: str, now: datetime, lease: timedelta = LEASE) -> bool:
    """Whether this delivery of `key` should be answered (exactly one caller gets True)."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(deliveries).values(event_id=key, state=CLAIMED, claimed_at=now, attempts=1)
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as connection:
        taken = connection.execute(
            update(deliveries)
            .where(
                deliveries.c.event_id == key,
                deliveries.c.state == CLAIMED,
                deliveries.c.claimed_at <= now - lease,
            )
            .values(claimed_at=now, attempts=deliveries.c.attempts + 1)
        )
    return taken.rowcount == 1


def finish(engine: Engine, key: str, now: datetime) -> None:
    """Mark `key` answered: no retry of it will be answered again."""
    with engine.begin() as connection:
        connection.execute(
            update(deliveries).where(deliveries.c.event_id == key).values(state=DONE, done_at=now)
        )
