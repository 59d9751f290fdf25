"""The GPU agent's loop: sample NVML, push batches to the bot (or the store), buffer when down.

Samples the bot cannot take yet wait in a JSON-lines file on disk, bounded: when it is full the
oldest samples are dropped, so an outage costs history, never the host's disk.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from bot.nvml_sampler import NvmlSampler
from storage.gpu_telemetry import insert_samples, validated_rows

log = logging.getLogger(__name__)

IMDS_URL = "http://169.254.169.254"
BATCH = 1000  # samples per request: well under the server's body limit


class Sink(Protocol):
    """Where samples go; raises when they could not be delivered."""

    def push(self, rows: list[dict[str, Any]]) -> None:
        """Deliver `rows` or raise."""
        ...


@dataclass(frozen=True)
class HttpSink:
    """POSTs batches to the bot's ``/api/gpu-metrics`` with the agent's bearer token."""

    url: str
    token: str
    timeout: float = 10.0

    def push(self, rows: list[dict[str, Any]]) -> None:
        """One request per batch; any non-2xx answer or network error raises."""
        for start in range(0, len(rows), BATCH):
            body = json.dumps({"samples": rows[start : start + BATCH]}, default=str).encode()
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()


@dataclass(frozen=True)
class DatabaseSink:
    """Writes samples straight into the store's `gpu_samples`."""

    engine: Engine

    def push(self, rows: list[dict[str, Any]]) -> None:
        """Validate, then insert every row in one transaction."""
        with self.engine.begin() as connection:
            insert_samples(connection, validated_rows(rows))


@dataclass(frozen=True)
class DiskBuffer:
    """Undelivered samples in a JSON-lines file, at most `max_samples` of the newest."""

    path: Path
    max_samples: int = 100_000

    def load(self) -> list[dict[str, Any]]:
        """Buffered samples, oldest first; an unreadable line is skipped."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("skipping a damaged line in %s", self.path)
        return rows

    def save(self, rows: list[dict[str, Any]]) -> int:
        """Keep the newest `max_samples` of `rows`; how many older ones were dropped."""
        kept = rows[-self.max_samples :] if self.max_samples else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(row, default=str) + "\n" for row in kept))
        temporary.replace(self.path)
        return len(rows) - len(kept)

    def clear(self) -> None:
        """Forget delivered samples."""
        self.path.unlink(missing_ok=True)


def instance_id(base_url: str = IMDS_URL, timeout: float = 0.5) -> str | None:
    """The EC2 instance id from IMDSv2 (token, then metadata), or None off EC2 or on any error."""
    try:
        token_request = urllib.request.Request(
            f"{base_url}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        with urllib.request.urlopen(token_request, timeout=timeout) as response:
            token = response.read().decode()
        id_request = urllib.request.Request(
            f"{base_url}/latest/meta-data/instance-id",
            headers={"X-aws-ec2-metadata-token": token},
        )
        with urllib.request.urlopen(id_request, timeout=timeout) as response:
            return response.read().decode().strip() or None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Agent:
    """Samples once per tick and delivers everything not yet delivered."""

    sampler: NvmlSampler
    sink: Sink
    buffer: DiskBuffer
    clock: Callable[[], datetime] = _utc_now

    def tick(self) -> bool:
        """Sample, then push buffered and new samples; True when they were delivered."""
        rows = self.buffer.load() + self.sampler.sample(self.clock())
        try:
            self.sink.push(rows)
        except Exception as error:
            dropped = self.buffer.save(rows)
            log.warning(
                "could not deliver %d GPU samples (%s); buffered%s",
                len(rows),
                error,
                f", dropped the {dropped} oldest" if dropped else "",
            )
            return False
        self.buffer.clear()
        return True

    def run(self, interval: float, ticks: int | None = None) -> None:
        """Tick every `interval` seconds, `ticks` times or until interrupted."""
        done = 0
        while ticks is None or done < ticks:
            started = time.monotonic()
            self.tick()
            done += 1
            if ticks is None or done < ticks:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
