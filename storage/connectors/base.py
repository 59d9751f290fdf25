"""What every connector shares: month windows, FOCUS frame assembly, paged JSON over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import pandas as pd
import urllib3
from urllib3.util.retry import Retry

from skills.errors import UserError
from storage.focus import COLUMNS

# The FOCUS columns a connector frame carries, as the providers' exports name them.
FOCUS_COLUMNS: tuple[str, ...] = (*(column.focus_name for column in COLUMNS), "Id")

AI_CATEGORY = "AI and Machine Learning"

# Statuses worth retrying: throttling, timeouts and server trouble (529: Anthropic overloaded).
RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)


class ConnectorError(UserError):
    """A source could not be read completely; nothing was written to the store."""


@dataclass(frozen=True)
class HttpPolicy:
    """How hard to try: retries per request, exponential backoff base and the longest wait."""

    retries: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    timeout: float = 60.0


class _CappedRetry(Retry):
    """urllib3's Retry (backoff, Retry-After on 429/503), with Retry-After capped at `max_wait`."""

    max_wait: float = 60.0

    def new(self, **kw: object) -> _CappedRetry:
        retry = super().new(**kw)
        retry.max_wait = self.max_wait
        return retry

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.max_wait)


class JsonApi:
    """GET JSON from one API with retries; `pages` follows `has_more` / `next_page` cursors."""

    def __init__(
        self, name: str, base_url: str, headers: dict[str, str], policy: HttpPolicy
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        retry = _CappedRetry(
            total=policy.retries,
            connect=policy.retries,
            read=policy.retries,
            status=policy.retries,
            backoff_factor=policy.backoff,
            backoff_max=policy.max_wait,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.max_wait = policy.max_wait
        self._pool = urllib3.PoolManager(
            headers={"Accept": "application/json", "User-Agent": "spendbot", **headers},
            retries=retry,
            timeout=urllib3.Timeout(total=policy.timeout),
        )

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> dict:
        """One GET, retried on throttling and server errors; raises ConnectorError when it fails."""
        url = f"{self.base_url}{path}?{urlencode(list(params))}"
        try:
            response = self._pool.request("GET", url)
        except urllib3.exceptions.HTTPError as error:
            raise ConnectorError(f"{self.name}: GET {path} failed: {error}") from None
        if response.status >= 400:
            detail = response.data[:200].decode("utf-8", "replace")
            raise ConnectorError(
                f"{self.name}: GET {path} answered HTTP {response.status}: {detail}",
                "check the admin key and its scopes" if response.status in (401, 403) else None,
            )
        try:
            body = json.loads(response.data)
        except ValueError:
            raise ConnectorError(f"{self.name}: GET {path} did not return JSON") from None
        if not isinstance(body, dict):
            raise ConnectorError(f"{self.name}: GET {path} returned {type(body).__name__}")
        return body

    def pages(self, path: str, params: Sequence[tuple[str, str]]) -> Iterator[dict]:
        """Every page of a cursor-paged list, first to last."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            body = self.get(path, [*params, *((("page", cursor),) if cursor else ())])
            yield body
            if not body.get("has_more"):
                return
            cursor = body.get("next_page")
            if not cursor or cursor in seen:
                raise ConnectorError(
                    f"{self.name}: {path} says has_more but gives no new next_page"
                )
            seen.add(cursor)

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()


def month_starts(now: datetime, months: int) -> list[date]:
    """The first days of the `months` calendar months ending with the one holding `now`."""
    if months < 1:
        raise UserError("months must be at least 1")
    first = now.date().replace(day=1)
    starts = [first]
    for _ in range(months - 1):
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return sorted(starts)


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_end(start: date, now: datetime) -> date:
    """Where a query for the month starting `start` stops: its end, or tomorrow if sooner."""
    return min(next_month(start), now.date() + timedelta(days=1))


def utc_midnight(day: date) -> datetime:
    """Midnight UTC at the start of `day`, timezone-aware."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def stamp(day: date) -> str:
    """A day as FOCUS exports write it: midnight, to the second."""
    return f"{day.isoformat()} 00:00:00"


def daily_periods(day: date) -> dict[str, str]:
    """The charge period (one day) and billing period (its calendar month) columns."""
    start = day.replace(day=1)
    return {
        "ChargePeriodStart": stamp(day),
        "ChargePeriodEnd": stamp(day + timedelta(days=1)),
        "BillingPeriodStart": stamp(start),
        "BillingPeriodEnd": stamp(next_month(start)),
    }


def focus_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A FOCUS frame from row dicts: every FOCUS column present, None where a row has no value."""
    frame = pd.DataFrame.from_records(rows, columns=list(FOCUS_COLUMNS)).astype(object)
    return frame.where(frame.notna(), None)
