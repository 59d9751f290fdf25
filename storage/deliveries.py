"""Claims on chat deliveries, so each is answered once however often, and wherever, it arrives.

Slack redelivers an event (``X-Slack-Retry-Num``) and the Bot Framework an activity when it did
not see a timely response, possibly to another replica. The first delivery inserts a ``claimed``
row keyed by the delivery's id (Slack's ``event_id``; ``teams:`` and a digest for Teams); a later
one finds it and does nothing, unless the claim is older than the lease and still not ``done``:
the replica that took it is taken to have died, and the retry takes the claim over
(compare-and-set on ``claimed_at``) and answers instead.

Claims are kept only while a redelivery can still come (`prune`): Slack retries for about an
hour, the Bot Framework for minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, update
from sqlalchemy.exc import IntegrityError

from storage.models import slack_events as deliveries
from storage.retention import delete_rows

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


def prune(engine: Engine, older_than: datetime, *, dry_run: bool = False) -> int:
    """Delete claims last touched before `older_than`; how many (`dry_run`: would be).

    A claim's last touch is when it was answered, or else when it was last claimed. An
    unanswered claim older than its lease is one a retry would take over anyway, so deleting it
    changes nothing; an answered one must outlive every redelivery of its event, so the cut-off
    must lie further back than the platforms retry.
    """
    stale = func.coalesce(deliveries.c.done_at, deliveries.c.claimed_at) < older_than
    return delete_rows(engine, deliveries, stale, dry_run=dry_run)
