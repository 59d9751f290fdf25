"""The one place blocking work (SQL, the Assistant, the LLM, chart drawing) leaves the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Blocking:
    """A bounded thread pool the server's handlers await; acks never wait for it."""

    def __init__(self, workers: int = 16) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spendbot-work")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `function` in the pool, in the caller's context (request id), without blocking."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return await loop.run_in_executor(self.pool, call)

    def close(self) -> None:
        """Stop taking work; running calls finish in their threads."""
        self.pool.shutdown(wait=False, cancel_futures=True)
