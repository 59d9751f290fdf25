"""`spendbot serve` as a process: binds the configured address, answers /healthz and Slack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fake_slack import FakeSlack, event_body, post, signed

SECRET = "serve-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_command_runs_the_server(tmp_path: Path) -> None:
    port = free_port()
    with FakeSlack() as fake:
        env = {
            **os.environ,
            "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "SPENDBOT_PORT": str(port),
            "SLACK_BOT_TOKEN": "xoxb-serve",
            "SLACK_SIGNING_SECRET": SECRET,
            "SPENDBOT_SLACK_API_URL": f"{fake.url}/api/",
        }
        env.pop("SLACK_APP_TOKEN", None)
        env.pop("ANTHROPIC_API_KEY", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                        health = json.loads(response.read())
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.1)
            assert health["status"] == "ok" and health["slack"] is True
            event = {
                "type": "app_mention",
                "user": "U1",
                "text": "<@UBOT> help",
                "ts": "1.000001",
                "channel": "C1",
            }
            body = event_body(event, "EvServe")
            response = post(
                f"{url}/slack/events", body, signed(SECRET, body, content_type="application/json")
            )
            assert response.status == 200
            (update,) = fake.wait_for("chat.update")
            assert update.params["channel"] == "C1"
        finally:
            process.send_signal(signal.SIGINT)
            output = process.communicate(timeout=15)[0].decode()
    assert f"127.0.0.1:{port}" in output
