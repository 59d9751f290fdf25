"""The real clock in the form the store keeps times: naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, naive UTC. Leases and claims use it even when SPENDBOT_NOW pins the date for questions."""
    return datetime.now(UTC).replace(tzinfo=None)
