"""`spendbot mcp`: the registry served to MCP clients, in-process, over stdio and streamable HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from sqlalchemy import Engine, select

from bot.mcp_server import build_server
from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from storage.models import actions
from tests.fake_anthropic import result_json
from tests.guarded_fakes import FakeCloud, make_registry

NOW = datetime(2026, 11, 29, 12)
FRAME = generate_demo_focus(date(2026, 11, 28), days=30)


def assistant(engine: Engine, registry: Any = None) -> Assistant:
    return Assistant(
        Settings(database_url=str(engine.url), now=NOW), engine, registry or load_skills()
    )


async def list_and_call(server: Any, name: str, arguments: dict[str, Any]) -> tuple[list, Any]:
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        return tools, await client.call_tool(name, arguments)


def test_read_only_by_default_with_labelled_results(sqlite_engine: Engine) -> None:
    ingest_frame(sqlite_engine, FRAME, "demo")
    server = build_server(assistant(sqlite_engine), "mcp:ann")
    tools, result = anyio.run(list_and_call, server, "data_status", {})

    names = [tool.name for tool in tools]
    assert "spend_query" in names and "data_status" in names
    assert all(tool.annotations.read_only_hint for tool in tools)
    assert not result.is_error
    assert result.content[0].text.startswith('<tool_result_data tool="data_status">')
    assert result.structured_content["data"]["line_items"] == len(FRAME)
    spend = next(tool for tool in tools if tool.name == "spend_query")
    assert "team" in spend.input_schema["properties"]["group_by"]["items"]["enum"]


def test_unknown_and_guarded_tools_are_refused_by_default(sqlite_engine: Engine) -> None:
    cloud = FakeCloud()
    server = build_server(assistant(sqlite_engine, make_registry(cloud)), "mcp:ann")
    tools, result = anyio.run(list_and_call, server, "fake_stop", {"instances": ["i-1"]})
    assert tools == []
    assert result.is_error and "Unknown tool 'fake_stop'" in result.content[0].text
    assert cloud.stop_calls == []


def test_allow_writes_can_only_propose(sqlite_engine: Engine) -> None:
    cloud = FakeCloud()
    server = build_server(
        assistant(sqlite_engine, make_registry(cloud)), "mcp:ann", allow_writes=True
    )
    tools, result = anyio.run(list_and_call, server, "fake_stop", {"instances": ["i-1", "i-2"]})
    # fake_label runs at once for role holders: never offered, even with --allow-writes.
    assert [tool.name for tool in tools] == ["fake_stop"]
    assert tools[0].annotations.destructive_hint is True
    assert not result.is_error
    assert cloud.stop_calls == []
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(actions.c.state, actions.c.requested_by)).all() == [
            ("pending", "mcp:ann")
        ]


def _environment(tmp_path: Path) -> dict[str, str]:
    database = f"sqlite:///{tmp_path / 'mcp.db'}"
    engine = open_database(database)
    ingest_frame(engine, FRAME, "demo")
    engine.dispose()
    return {**os.environ, "SPENDBOT_DATABASE_URL": database, "SPENDBOT_NOW": NOW.isoformat()}


def _check_client(target: Any) -> None:
    async def main() -> None:
        async with Client(target) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            assert "data_status" in names
            result = await client.call_tool("data_status", {})
            assert not result.is_error
            assert result_json({"content": result.content[0].text})["data"]["line_items"] == len(
                FRAME
            )

    anyio.run(main)


def test_stdio_transport(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    _check_client(StdioServerParameters(command=sys.executable, args=["-m", "bot", "mcp"], env=env))


def test_streamable_http_transport(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "mcp", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.stderr.read().decode()}")
                time.sleep(0.1)
        _check_client(f"http://127.0.0.1:{port}/mcp")
    finally:
        process.terminate()
        process.wait(timeout=10)
