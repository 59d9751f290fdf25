"""``spendbot agent``: watch this host's GPUs and report them to the bot or the store."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.gpu_agent import IMDS_URL, Agent, DatabaseSink, DiskBuffer, HttpSink, Sink, instance_id
from bot.nvml_sampler import NvmlSampler, NvmlUnavailable, load_nvml
from storage.database import open_database

errors = Console(stderr=True)

DEFAULT_BUFFER = Path.home() / ".cache" / "spendbot" / "gpu-samples.jsonl"


def _fail(message: str, code: int) -> typer.Exit:
    errors.print(f"spendbot agent: {message}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code)


def agent(
    url: Annotated[
        str | None,
        typer.Option(envvar="SPENDBOT_AGENT_URL", help="The bot's /api/gpu-metrics URL."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="SPENDBOT_AGENT_TOKEN", help="This agent's bearer token."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Write samples straight into this store instead.")
    ] = None,
    interval: Annotated[float, typer.Option(min=1, help="Seconds between samples.")] = 60,
    once: Annotated[bool, typer.Option(help="Sample and deliver once, then exit.")] = False,
    host: Annotated[str | None, typer.Option(help="Host name; default: this machine's.")] = None,
    imds_url: Annotated[
        str, typer.Option(help="EC2 instance metadata (IMDSv2) base URL; empty: do not ask.")
    ] = IMDS_URL,
    buffer: Annotated[
        Path, typer.Option(help="Where samples wait while the bot is unreachable.")
    ] = DEFAULT_BUFFER,
    buffer_max: Annotated[
        int, typer.Option(min=0, help="At most this many buffered samples; oldest dropped.")
    ] = 100_000,
) -> None:
    """Sample every GPU (utilization, memory, power, temperature, processes) and report it."""
    if bool(url) == bool(database_url):
        raise _fail("give exactly one of --url (with --token) or --database-url", 2)
    if url and not token:
        raise _fail("--url needs --token (or SPENDBOT_AGENT_TOKEN)", 2)
    try:
        nvml = load_nvml()
    except NvmlUnavailable as error:
        raise _fail(f"no GPU to watch: {error}", 3) from None
    ec2_id = instance_id(imds_url) if imds_url else None
    sampler = NvmlSampler(
        nvml, host or socket.gethostname(), ec2_id, "AWS" if ec2_id else "on-prem"
    )
    sink: Sink = (
        HttpSink(url, token or "") if url else DatabaseSink(open_database(database_url or ""))
    )
    runner = Agent(sampler, sink, DiskBuffer(buffer, buffer_max))
    if once:
        if not runner.tick():
            raise _fail(f"samples not delivered; buffered in {buffer}", 1)
        return
    runner.run(interval)
