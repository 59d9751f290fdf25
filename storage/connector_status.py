"""Each connector source's sync status: last attempt, last success, rows loaded, last error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from storage.models import connector_status

ERROR_CHARS = 2000


@dataclass(frozen=True)
class SourceStatus:
    """One source's row of `connector_status`."""

    source: str
    last_attempt_at: datetime
    last_success_at: datetime | None
    rows: int | None
    last_error: str | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (ISO times), for /healthz and skill data."""
        return {
            "source": self.source,
            "last_attempt_at": self.last_attempt_at.isoformat(),
            "last_success_at": self.last_success_at and self.last_success_at.isoformat(),
            "rows": self.rows,
            "last_error": self.last_error,
            "ok": self.last_error is None,
        }


def _save(engine: Engine, source: str, values: dict[str, object]) -> None:
    with engine.begin() as connection:
        changed = connection.execute(
            update(connector_status).where(connector_status.c.source == source).values(**values)
        ).rowcount
        if not changed:
            connection.execute(insert(connector_status).values(source=source, **values))


def record_success(engine: Engine, source: str, at: datetime, rows: int) -> None:
    """Note a sync of `source` that loaded `rows` rows at `at`."""
    _save(
        engine,
        source,
        {"last_attempt_at": at, "last_success_at": at, "rows": rows, "last_error": None},
    )


def record_failure(engine: Engine, source: str, at: datetime, error: str) -> None:
    """Note a failed sync of `source`; its last success and row count are kept."""
    _save(engine, source, {"last_attempt_at": at, "last_error": error[:ERROR_CHARS]})


def source_statuses(engine: Engine) -> list[SourceStatus]:
    """Every source that has been synced at least once, by name."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(connector_status).order_by(connector_status.c.source)
        ).all()
    return [SourceStatus(**row._mapping) for row in rows]
