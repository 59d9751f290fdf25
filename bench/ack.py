"""Slack and Teams ack latency under concurrent requests, against the real server on loopback.

`spendbot serve` runs as its own process over a SQLite store of demo spend, with a fake Slack
Web API and a fake Bot Connector on 127.0.0.1 taking its answers. Each round sends
`--concurrency` requests at once: to Slack, signed requests (half ``/spend`` commands, half
mentions) timed until the HTTP ack (Slack's limit is 3 s); to Teams, message activities (half
personal chats, half channel mentions) posted to /api/messages and timed until the HTTP response
(Bot Framework's limit is 15 s). The answers are computed after the acks, so later rounds are
acked while earlier answers are still running, as under real load; the transports are measured
one after the other, each once all answers of the previous one have arrived.
Usage: python -m bench.ack [--transport slack|teams|both] [--concurrency 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp

from bench.queries import percentile
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.fake_bot_connector import FakeBotConnector, activity, mention, user
from tests.fake_slack import FakeSlack, command_body, event_body, signed

SECRET = "bench-signing-secret"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
WARM_UP = (10_000_000, 10_000_001)
"""Indices of the first two requests, not timed: they pay for lazy set-up (Bolt's auth.test)."""
TRANSPORTS = ("slack", "teams")

Request = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Transport:
    """What differs between Slack and Teams: the endpoint, the requests, what answers them."""

    name: str
    url: str
    mix: str
    """What is sent, and until when it is timed."""
    accepted: int
    """The status of an ack: Bolt answers 200, Bot Framework 201 to a non-invoke activity."""
    request: Callable[[int], Request]
    """The distinct request number `index` (the mix alternates on its parity)."""
    wait_answered: Callable[[Sequence[int]], None]
    """Block until the requests of these indices were all answered at the fake."""
    fake: FakeSlack | FakeBotConnector
    """The fake taking the answers, with every call it received."""


@dataclass
class Result:
    """Ack latencies (seconds) and statuses, then seconds until all were sent, and answered."""

    latencies: list[float]
    statuses: Counter[int]
    sent: float
    answered: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slack_transport(server: str, fake: FakeSlack) -> Transport:
    """Signed slash commands (even indices) and mentions (odd) to /slack/events."""

    def request(index: int) -> Request:
        if index % 2 == 0:
            body = command_body("last month by provider", f"{fake.url}/response/{index}")
            return body, signed(SECRET, body, content_type=FORM)
        event = {
            "type": "app_mention",
            "user": "U100",
            "text": "<@UBOT> spend by team last month",
            "ts": f"1799999999.{index:06d}",
            "channel": "C100",
        }
        body = event_body(event, f"EvBench{index}")
        return body, signed(SECRET, body, content_type=JSON)

    def wait_answered(indices: Sequence[int]) -> None:
        mentions = sum(index % 2 for index in indices)
        fake.wait_for("/response/", len(indices) - mentions, timeout=600)
        fake.wait_for("chat.update", mentions, timeout=600)  # a mention's answer replaces "…"

    mix = "signed requests, half /spend commands, half mentions, until the HTTP ack"
    return Transport("slack", f"{server}/slack/events", mix, 200, request, wait_answered, fake)


def teams_transport(server: str, fake: FakeBotConnector) -> Transport:
    """Message activities to /api/messages: personal chats (even indices), channel mentions (odd)."""

    def request(index: int) -> Request:
        if index % 2 == 0:
            sender = user(f"aad-bench-{index}", f"User {index}")
            body = activity(fake.url, text="last month by provider", sender=sender, id=f"b{index}")
        else:
            body = mention(fake.url, "spend by team last month", id=f"b{index}")
        return json.dumps(body).encode(), {"Content-Type": JSON}

    def wait_answered(indices: Sequence[int]) -> None:
        fake.wait_for("reply", "message", len(indices), timeout=600)

    mix = "message activities, half personal chats, half channel mentions, until the HTTP response"
    return Transport("teams", f"{server}/api/messages", mix, 201, request, wait_answered, fake)


async def _round(
    session: aiohttp.ClientSession, transport: Transport, indices: Sequence[int]
) -> list[tuple[int, float]]:
    async def one(index: int) -> tuple[int, float]:
        body, headers = transport.request(index)
        started = time.perf_counter()
        async with session.post(transport.url, data=body, headers=headers) as response:
            await response.read()
        return response.status, time.perf_counter() - started

    return list(await asyncio.gather(*(one(index) for index in indices)))


async def _send(transport: Transport, rounds: list[range]) -> list[tuple[int, float]]:
    connector = aiohttp.TCPConnector(limit=max(len(indices) for indices in rounds))
    async with aiohttp.ClientSession(connector=connector) as session:
        await _round(session, transport, WARM_UP)
        acks: list[tuple[int, float]] = []
        for indices in rounds:
            acks += await _round(session, transport, indices)
        return acks


def measure(transport: Transport, concurrency: int, rounds: int) -> Result:
    """Send `rounds` rounds of `concurrency` requests at once; wait until all were answered."""
    batches = [range(number * concurrency, (number + 1) * concurrency) for number in range(rounds)]
    started = time.perf_counter()
    acks = asyncio.run(_send(transport, batches))
    sent = time.perf_counter() - started
    statuses = Counter(status for status, _ in acks)
    if set(statuses) != {transport.accepted}:
        raise RuntimeError(f"{transport.name} acks were {dict(statuses)}")
    transport.wait_answered([*WARM_UP, *range(concurrency * rounds)])
    answered = time.perf_counter() - started
    return Result([seconds for _, seconds in acks], statuses, sent, answered)


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)


@contextmanager
def serving(names: Sequence[str], days: int, folder: Path) -> Iterator[dict[str, Transport]]:
    """`spendbot serve` over `days` of demo spend with the fakes of `names`; their transports."""
    database_url = f"sqlite:///{folder / 'ack.db'}"
    engine = open_database(database_url)
    ingest_frame(engine, generate_demo_focus(date(2026, 11, 28), days=days), "demo data")
    engine.dispose()
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPENDBOT_DATABASE_URL": database_url,
        "SPENDBOT_NOW": "2026-11-29T12:00:00",
    }
    # Without an app id /api/messages takes unauthenticated calls, from loopback only.
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ANTHROPIC_API_KEY", "MICROSOFT_APP_ID"):
        env.pop(name, None)
        env.pop(f"SPENDBOT_{name}", None)
    with ExitStack() as stack:
        transports: dict[str, Transport] = {}
        if "slack" in names:
            slack = stack.enter_context(FakeSlack())
            env |= {
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "SPENDBOT_SLACK_API_URL": f"{slack.url}/api/",
            }
            transports["slack"] = slack_transport(server, slack)
        if "teams" in names:
            transports["teams"] = teams_transport(server, stack.enter_context(FakeBotConnector()))
        command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--log-format", "json"]
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            _wait_for_server(server, process)
            yield transports
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    """Print ack latency percentiles per transport and how long the answers took to arrive."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=[*TRANSPORTS, "both"], default="both")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days", type=int, default=60, help="days of demo spend in the store")
    args = parser.parse_args()
    names = TRANSPORTS if args.transport == "both" else (args.transport,)
    with (
        tempfile.TemporaryDirectory(prefix="spendbot-ack-") as folder,
        serving(names, args.days, Path(folder)) as transports,
    ):
        results = {name: measure(transports[name], args.concurrency, args.rounds) for name in names}
    print(
        f"{args.rounds} rounds of {args.concurrency} concurrent requests per transport, "
        f"{args.days} days of demo spend, SQLite"
    )
    for name in names:
        print(f"{name}: {transports[name].mix}")
    print("| transport | acks | p50 ms | p99 ms | max ms | all sent in s | all answered in s |")
    print("|---|---|---|---|---|---|---|")
    for name, result in results.items():
        ms = [value * 1000 for value in result.latencies]
        print(
            f"| {name} | {len(ms)} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.99):.0f} | "
            f"{max(ms):.0f} | {result.sent:.1f} | {result.answered:.1f} |"
        )


if __name__ == "__main__":
    main()
