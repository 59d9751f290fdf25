"""The NVML agent against a fake NVML: sampling, pushing to the real server, buffering, IMDSv2."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pynvml
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import bot.cli_gpus
from bot.cli import app
from bot.gpu_agent import Agent, DatabaseSink, DiskBuffer, HttpSink, instance_id
from bot.nvml_sampler import NvmlSampler
from bot.pipeline import Assistant
from bot.server import build_server
from bot.settings import Settings
from skills.catalog import load_skills
from storage.models import gpu_samples
from tests.fake_nvml import FakeGpu, FakeNvml
from tests.fake_slack import BotServer, post
from tests.guarded_fakes import grant

NOW = datetime(2026, 11, 29, 12, 0)
GIB = 1024**3


def two_gpus() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu(utilization=0, memory_used=GIB // 2, uuid="GPU-a"),
            FakeGpu(
                utilization=73,
                memory_used=8 * GIB,
                power_mw=None,
                temperature=61,
                processes={4242: ("/usr/bin/python3", 2 * GIB)},
                uuid="GPU-b",
            ),
        ]
    )


def stored(engine: Engine) -> list:
    with engine.connect() as connection:
        statement = select(gpu_samples).order_by(gpu_samples.c.sampled_at, gpu_samples.c.gpu_index)
        return connection.execute(statement).all()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def server(sqlite_engine: Engine) -> Iterator[BotServer]:
    settings = Settings(database_url=str(sqlite_engine.url), now=NOW, agent_tokens="tok-a, tok-b")
    assistant = Assistant(settings, sqlite_engine, load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sampler_reads_every_gpu_with_its_processes() -> None:
    rows = NvmlSampler(two_gpus(), "h1", "i-0abc", "AWS").sample(NOW)
    assert [(r["gpu_index"], r["gpu_uuid"], r["utilization_pct"]) for r in rows] == [
        (0, "GPU-a", 0.0),
        (1, "GPU-b", 73.0),
    ]
    first, second = rows
    assert (first["memory_used_mb"], first["memory_total_mb"]) == (512.0, 24 * 1024.0)
    assert (first["power_w"], first["temperature_c"], first["process_count"]) == (60.0, 40, 0)
    assert (second["power_w"], second["temperature_c"]) == (None, 61)
    assert json.loads(second["processes_json"]) == [
        {"pid": 4242, "name": "python3", "used_memory_mb": 2048.0}
    ]
    assert {(r["host"], r["instance_id"], r["provider"], r["source"]) for r in rows} == {
        ("h1", "i-0abc", "AWS", "nvml")
    }
    assert first["gpu_model"] == "NVIDIA A10G" and first["sampled_at"] == NOW


def test_agent_pushes_samples_to_the_bot_with_its_bearer_token(
    server: BotServer, sqlite_engine: Engine, tmp_path: Path
) -> None:
    sink = HttpSink(f"{server.url}/api/gpu-metrics", "tok-b")
    agent = Agent(NvmlSampler(two_gpus(), "h1"), sink, DiskBuffer(tmp_path / "b.jsonl"), Clock(NOW))
    assert agent.tick()
    rows = stored(sqlite_engine)
    assert [(r.host, r.gpu_index, r.utilization_pct, r.sampled_at) for r in rows] == [
        ("h1", 0, 0.0, NOW),
        ("h1", 1, 73.0, NOW),
    ]
    assert json.loads(rows[1].processes_json)[0]["name"] == "python3"
    assert not (tmp_path / "b.jsonl").exists()


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Authorization": "Bearer tok-c"}, {"samples": []}, 401),
        ({}, {"samples": []}, 401),
        ({"Authorization": "Basic tok-a"}, {"samples": []}, 401),
        ({"Authorization": "Bearer tok-a"}, {"rows": []}, 400),
        (
            {"Authorization": "Bearer tok-a"},
            {"samples": [{"host": "h", "gpu_index": 0, "sampled_at": "2026-11-29T12:00:00"}]},
            422,
        ),
        (
            {"Authorization": "Bearer tok-a"},
            {
                "samples": [
                    {
                        "host": "h",
                        "gpu_index": 0,
                        "sampled_at": "2026-11-29T12:00:00Z",
                        "utilization_pct": 150,
                    }
                ]
            },
            422,
        ),
    ],
    ids=["wrong-token", "no-token", "not-bearer", "no-samples", "no-utilization", "over-100"],
)
def test_the_endpoint_refuses_strangers_and_bad_samples(
    server: BotServer, sqlite_engine: Engine, headers: dict, body: dict, status: int
) -> None:
    response = post(f"{server.url}/api/gpu-metrics", json.dumps(body).encode(), headers)
    assert response.status == status, response.body
    assert stored(sqlite_engine) == []


def test_aware_times_are_stored_as_utc(server: BotServer, sqlite_engine: Engine) -> None:
    sample = {
        "host": "h",
        "gpu_index": 0,
        "sampled_at": "2026-11-29T13:00:00+01:00",
        "utilization_pct": 3,
    }
    response = post(
        f"{server.url}/api/gpu-metrics",
        json.dumps({"samples": [sample]}).encode(),
        {"Authorization": "Bearer tok-a"},
    )
    assert (response.status, response.json()) == (202, {"stored": 1})
    assert [(r.sampled_at, r.process_count, r.source) for r in stored(sqlite_engine)] == [
        (NOW, 0, "nvml")
    ]


def test_while_the_bot_is_down_samples_wait_on_disk_bounded_then_arrive(
    server: BotServer, sqlite_engine: Engine, tmp_path: Path
) -> None:
    clock, buffer = Clock(NOW), DiskBuffer(tmp_path / "buffer.jsonl", max_samples=3)
    sampler = NvmlSampler(two_gpus(), "h1")
    down = Agent(
        sampler,
        HttpSink(f"http://127.0.0.1:{closed_port()}/api/gpu-metrics", "tok-a"),
        buffer,
        clock,
    )
    assert not down.tick()
    clock.at = NOW + timedelta(minutes=1)
    assert not down.tick()
    # Four samples taken, three kept: the oldest (GPU 0 at NOW) was dropped.
    kept = [(row["gpu_index"], row["sampled_at"]) for row in buffer.load()]
    assert kept == [(1, str(NOW)), (0, str(clock.at)), (1, str(clock.at))]

    clock.at = NOW + timedelta(minutes=2)
    up = Agent(sampler, HttpSink(f"{server.url}/api/gpu-metrics", "tok-a"), buffer, clock)
    assert up.tick()
    assert [(r.gpu_index, r.sampled_at) for r in stored(sqlite_engine)] == [
        (1, NOW),
        (0, NOW + timedelta(minutes=1)),
        (1, NOW + timedelta(minutes=1)),
        (0, NOW + timedelta(minutes=2)),
        (1, NOW + timedelta(minutes=2)),
    ]
    assert buffer.load() == []


def test_no_endpoint_without_agent_tokens(sqlite_engine: Engine) -> None:
    settings = Settings(database_url=str(sqlite_engine.url), now=NOW)
    assistant = Assistant(settings, sqlite_engine, load_skills())
    with BotServer(build_server(settings, assistant)) as running:
        response = post(f"{running.url}/api/gpu-metrics", b"{}", {"Authorization": "Bearer x"})
    assert response.status == 404


class FakeImds(BaseHTTPRequestHandler):
    """IMDSv2: a PUT for a token, then metadata only with that token."""

    def do_PUT(self) -> None:
        ok = self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        )
        self._answer(200 if ok else 400, b"token-1")

    def do_GET(self) -> None:
        ok = self.headers.get("X-aws-ec2-metadata-token") == "token-1"
        if self.path == "/latest/meta-data/instance-id" and ok:
            self._answer(200, b"i-0123456789abcdef0")
        else:
            self._answer(401, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_instance_id_comes_from_imdsv2_and_is_none_off_ec2() -> None:
    imds = ThreadingHTTPServer(("127.0.0.1", 0), FakeImds)
    threading.Thread(target=imds.serve_forever, daemon=True).start()
    try:
        assert instance_id(f"http://127.0.0.1:{imds.server_port}") == "i-0123456789abcdef0"
    finally:
        imds.shutdown()
        imds.server_close()
    assert instance_id(f"http://127.0.0.1:{closed_port()}") is None


def test_agent_command_without_nvml_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_library() -> None:
        raise pynvml.NVMLError_LibraryNotFound()

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(app, ["agent", "--database-url", url, "--once"])
    assert result.exit_code == 3
    assert "no GPU to watch: NVML could not start" in result.output


def test_agent_command_writes_to_the_store(
    monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, tmp_path: Path
) -> None:
    monkeypatch.setattr(bot.cli_gpus, "load_nvml", two_gpus)
    args = ["agent", "--database-url", str(sqlite_engine.url), "--once", "--host", "lab-9"]
    result = CliRunner().invoke(app, [*args, "--imds-url", "", "--buffer", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    rows = stored(sqlite_engine)
    assert [(r.host, r.provider, r.gpu_index, r.utilization_pct) for r in rows] == [
        ("lab-9", "on-prem", 0, 0.0),
        ("lab-9", "on-prem", 1, 73.0),
    ]


def sample_lab(engine: Engine, tmp_path: Path) -> None:
    """An hour of agent samples every 5 minutes: lab-1 quiet, lab-2 running python on GPU 1."""
    quiet = FakeNvml([FakeGpu(utilization=1, processes={7: ("nvidia-persistenced", 0)})])
    working = FakeNvml(
        [FakeGpu(), FakeGpu(utilization=2, processes={9: ("/opt/conda/bin/python", GIB)})]
    )
    clock = Clock(NOW - timedelta(minutes=60))
    agents = [
        Agent(NvmlSampler(nvml, host), DatabaseSink(engine), DiskBuffer(tmp_path / host), clock)
        for nvml, host in ((quiet, "lab-1"), (working, "lab-2"))
    ]
    while clock.at <= NOW:
        assert all(agent.tick() for agent in agents)
        clock.at += timedelta(minutes=5)


def test_agent_samples_decide_which_on_prem_hosts_are_idle(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    sample_lab(sqlite_engine, tmp_path)
    settings = Settings(database_url=str(sqlite_engine.url), now=NOW)
    reply = (
        Assistant(settings, sqlite_engine, load_skills())
        .ask("which GPUs are idle?", "terminal:alice")
        .reply
    )
    assert [(t["id"], t["provider"], t["idle_since"]) for t in reply.data["idle"]] == [
        ("lab-1", "on-prem", (NOW - timedelta(minutes=60)).isoformat())
    ]
    assert reply.data["not_idle"] == [{"id": "lab-2", "reason": "process python on GPU 1 at 12:00"}]


def test_an_idle_on_prem_host_is_stopped_through_the_hook_once(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    sample_lab(sqlite_engine, tmp_path)
    stopped = tmp_path / "stopped.txt"
    hook = tmp_path / "stop-host.py"
    hook.write_text(
        f"import sys\nwith open({str(stopped)!r}, 'a') as f:\n    f.write(sys.argv[1] + '\\n')\n"
    )
    settings = Settings(
        database_url=str(sqlite_engine.url), now=NOW, gpu_stop_hook=f"{sys.executable} {hook}"
    )
    bot = Assistant(settings, sqlite_engine, load_skills())
    without = Assistant(
        Settings(database_url=str(sqlite_engine.url), now=NOW), sqlite_engine, load_skills()
    )
    assert without.ask("stop the idle GPUs", "terminal:alice").reply.text == (
        "No idle GPU instances to stop."
    )
    grant(sqlite_engine, "terminal:bob")
    proposed = bot.ask("stop the idle GPUs", "terminal:alice").reply
    action = proposed.data["action"]
    assert [t["id"] for t in action["targets"]] == ["lab-1"]
    done = bot.approve(action["id"], "terminal:bob")
    assert done.data["action"]["state"] == "succeeded", done.text
    assert bot.approve(action["id"], "terminal:bob").is_error
    assert stopped.read_text() == "lab-1\n"
