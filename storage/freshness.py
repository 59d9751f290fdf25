"""How fresh the cost data is, per provider: the newest load and the newest charge period end."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from storage.connector_status import source_statuses
from storage.models import cost_line_items, ingest_slices


@dataclass(frozen=True)
class ProviderFreshness:
    """When a provider's data was last loaded, and the end of its newest charge period."""

    loaded_at: datetime
    charge_period_end: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """ISO timestamps, ready for JSON."""
        return {
            "loaded_at": self.loaded_at.isoformat(),
            "charge_period_end": (
                self.charge_period_end.isoformat() if self.charge_period_end else None
            ),
        }


def data_freshness(engine: Engine) -> dict[str, ProviderFreshness]:
    """Freshness per provider name, from the slice table and each provider's newest period.

    The newest charge period end is read from the slices of the provider's newest billing
    period only, which the slice index keeps to about a month of rows however large the store.
    """
    slices = ingest_slices
    newest_period = (
        select(slices.c.provider_name, func.max(slices.c.billing_period_start).label("period"))
        .group_by(slices.c.provider_name)
        .subquery()
    )
    charge_end = (
        select(slices.c.provider_name, func.max(cost_line_items.c.charge_period_end))
        .join(cost_line_items, cost_line_items.c.slice_id == slices.c.id)
        .join(
            newest_period,
            (newest_period.c.provider_name == slices.c.provider_name)
            & (newest_period.c.period == slices.c.billing_period_start),
        )
        .group_by(slices.c.provider_name)
    )
    loads = select(slices.c.provider_name, func.max(slices.c.loaded_at)).group_by(
        slices.c.provider_name
    )
    with engine.connect() as connection:
        ends = dict(connection.execute(charge_end).all())
        return {
            provider: ProviderFreshness(loaded_at, ends.get(provider))
            for provider, loaded_at in connection.execute(loads).all()
        }


class FreshnessCache:
    """`data_freshness` and connector sync status read at most once per `ttl` seconds."""

    def __init__(self, engine: Engine, ttl: float = 60.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._value: dict[str, ProviderFreshness] = {}
        self._sources: dict[str, dict[str, Any]] = {}

    def get(self) -> dict[str, ProviderFreshness]:
        """The cached freshness, re-read when older than the ttl."""
        with self._lock:
            self._refresh()
            return self._value

    def sources(self) -> dict[str, dict[str, Any]]:
        """Each connector source's last attempt, success, rows and error (JSON-ready), cached."""
        with self._lock:
            self._refresh()
            return self._sources

    def _refresh(self) -> None:
        if time.monotonic() - self._read_at >= self.ttl:
            self._value = data_freshness(self.engine)
            self._sources = {s.source: s.as_dict() for s in source_statuses(self.engine)}
            self._read_at = time.monotonic()
