"""PostgreSQL for benchmarks: a given URL, or with ``auto`` a throwaway server like the tests'."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from tests.postgres_server import PostgresServer


@contextmanager
def postgres_databases(url: str | None) -> Iterator[Callable[[], str] | None]:
    """Yield a function that gives an empty database's URL on each call, or None.

    The URL is `url` itself, or with ``auto`` a fresh database on a throwaway server.
    """
    if url is None or url != "auto":
        yield (lambda: url) if url else None
        return
    server = PostgresServer()
    admin_url = server.start()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def new_database() -> str:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return admin_url.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield new_database
    finally:
        admin.dispose()
        server.stop()
