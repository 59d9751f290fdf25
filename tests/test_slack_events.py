"""Event claims on SQLite and PostgreSQL: one winner per event, takeover only of dead claims."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from storage.deliveries import claim, finish

T0 = datetime(2026, 11, 29, 12, 0)


def test_one_delivery_of_an_event_wins(engine: Engine) -> None:
    assert claim(engine, "Ev1", T0) is True
    assert claim(engine, "Ev1", T0 + timedelta(seconds=5)) is False
    assert claim(engine, "Ev2", T0) is True


def test_concurrent_deliveries_have_exactly_one_winner(engine: Engine) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: claim(engine, "EvRace", T0), range(16)))
    assert results.count(True) == 1


def test_a_dead_claim_is_taken_over_once_after_the_lease(engine: Engine) -> None:
    assert claim(engine, "EvDead", T0)
    later = T0 + timedelta(minutes=3)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: claim(engine, "EvDead", later), range(8)))
    assert results.count(True) == 1
    with engine.connect() as connection:
        attempts = connection.execute(
            text("SELECT attempts FROM slack_events WHERE event_id = 'EvDead'")
        ).scalar_one()
    assert attempts == 2


def test_an_answered_event_is_never_answered_again(engine: Engine) -> None:
    assert claim(engine, "EvDone", T0)
    finish(engine, "EvDone", T0 + timedelta(seconds=2))
    assert claim(engine, "EvDone", T0 + timedelta(hours=1)) is False
