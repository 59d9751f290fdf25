"""Slack ack latency under concurrent signed requests, against the real server on loopback.

`spendbot serve` runs as its own process over a SQLite store of demo spend, with a fake Slack
Web API on 127.0.0.1 taking its answers. Each round sends `--concurrency` signed requests at
once (half ``/spend`` commands, half mentions); the latency is until the HTTP ack (Slack's limit
is 3 s). The answers are computed after the acks, so later rounds are acked while earlier
answers are still running, as under real load.
Usage: python -m bench.ack [--concurrency 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import aiohttp

from bench.queries import percentile
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.fake_slack import FakeSlack, command_body, event_body, signed

SECRET = "bench-signing-secret"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(index: int, fake: FakeSlack) -> tuple[bytes, dict[str, str]]:
    """A signed slash command (even `index`) or mention (odd), each distinct."""
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


async def _round(
    session: aiohttp.ClientSession, url: str, fake: FakeSlack, first: int, count: int
) -> list[float]:
    async def one(index: int) -> float:
        body, headers = _request(index, fake)
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"request {index} got {response.status}")
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(first + i) for i in range(count))))


async def _send(url: str, fake: FakeSlack, concurrency: int, rounds: int) -> list[float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _round(session, url, fake, 10_000_000, 2)  # first request: Bolt's auth.test
        latencies: list[float] = []
        for number in range(rounds):
            latencies += await _round(session, url, fake, number * concurrency, concurrency)
        return latencies


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


def run(concurrency: int, rounds: int, days: int, folder: Path) -> tuple[list[float], float, float]:
    """Ack latencies (seconds), then seconds until all were sent and until all were answered."""
    database_url = f"sqlite:///{folder / 'ack.db'}"
    engine = open_database(database_url)
    ingest_frame(engine, generate_demo_focus(date(2026, 11, 28), days=days), "demo data")
    engine.dispose()
    port = _free_port()
    with FakeSlack() as fake:
        env = {
            **os.environ,
            "SPENDBOT_DATABASE_URL": database_url,
            "SPENDBOT_NOW": "2026-11-29T12:00:00",
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SPENDBOT_SLACK_API_URL": f"{fake.url}/api/",
        }
        for name in ("SLACK_APP_TOKEN", "ANTHROPIC_API_KEY"):
            env.pop(name, None)
        command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--log-format", "json"]
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for_server(url, process)
            started = time.perf_counter()
            latencies = asyncio.run(_send(f"{url}/slack/events", fake, concurrency, rounds))
            sent = time.perf_counter() - started
            answers = concurrency * rounds // 2
            fake.wait_for("/response/", answers, timeout=600)
            fake.wait_for("chat.update", answers + 1, timeout=600)
            return latencies, sent, time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    """Print ack latency percentiles and how long the answers took to arrive."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days", type=int, default=60, help="days of demo spend in the store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spendbot-ack-") as folder:
        latencies, sent, answered = run(args.concurrency, args.rounds, args.days, Path(folder))
    ms = [value * 1000 for value in latencies]
    print(
        f"{len(ms)} acks, {args.rounds} rounds of {args.concurrency} concurrent signed requests "
        f"(half /spend commands, half mentions), {args.days} days of demo spend, SQLite"
    )
    print("| p50 ms | p99 ms | max ms | all sent in s | all answered in s |")
    print("|---|---|---|---|---|")
    print(
        f"| {percentile(ms, 0.5):.0f} | {percentile(ms, 0.99):.0f} | {max(ms):.0f} | "
        f"{sent:.1f} | {answered:.1f} |"
    )


if __name__ == "__main__":
    main()
