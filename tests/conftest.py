"""Shared fixtures: fresh SQLite and PostgreSQL databases, the clock, the real FOCUS sample."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from bot.pipeline import Assistant
from bot.settings import Settings
from skills.catalog import load_skills
from storage.database import open_database
from tests.postgres_server import PostgresServer

DATA = Path(__file__).parent / "data"
SAMPLE_CSV = DATA / "focus_sample.csv"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run; skipped locally when none is installed, fatal in CI."""
    try:
        server = PostgresServer()
        url = server.start()
    except Exception as error:
        if os.environ.get("CI") or os.environ.get("SPENDBOT_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL unavailable: {error}")
    yield url
    server.stop()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'spendbot.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty store on each database backend."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite store, for tests that need only one backend."""
    engine = open_database(f"sqlite:///{tmp_path / 'spendbot.db'}")
    yield engine
    engine.dispose()


def make_assistant(engine: Engine, now: datetime) -> Assistant:
    """An assistant over `engine` with the clock pinned at `now`."""
    settings = Settings(database_url=str(engine.url), now=now)
    return Assistant(settings, engine, load_skills())


@pytest.fixture(autouse=True)
def _no_real_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own Anthropic key or model setting never reaches a test (or the internet)."""
    for name in ("ANTHROPIC_API_KEY", "SPENDBOT_ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SPENDBOT_MODEL", raising=False)
