"""Set-up shared by transport tests: a demo store built once per module, a fresh copy per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.fake_slack import FakeSlack

DEMO_END = date(2026, 11, 28)


def build_demo_file(
    factory: pytest.TempPathFactory, name: str, frame: pd.DataFrame | None = None, days: int = 60
) -> Path:
    """A SQLite store holding `frame` (default: `days` of demo spend ending 2026-11-28)."""
    path = factory.mktemp(name) / "demo.db"
    engine = open_database(f"sqlite:///{path}")
    data = frame if frame is not None else generate_demo_focus(DEMO_END, days=days)
    ingest_frame(engine, data, "demo data")
    engine.dispose()
    return path


def copied_engine(demo_file: Path, tmp_path: Path) -> Iterator[Engine]:
    """A fresh copy of the demo store for one test (use with ``yield from``)."""
    path = tmp_path / "spendbot.db"
    shutil.copy(demo_file, path)
    engine = open_database(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def demo_fixtures(
    name: str, frame: pd.DataFrame | None = None, days: int = 60
) -> tuple[Callable[..., Path], Callable[..., Iterator[Engine]]]:
    """A test module's `demo_file` (built once) and `engine` (a fresh copy per test) fixtures.

    Use as ``demo_file, engine = demo_fixtures("alerts", FRAME)``.
    """

    @pytest.fixture(scope="module", name="demo_file")
    def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return build_demo_file(tmp_path_factory, name, frame, days)

    @pytest.fixture(name="engine")
    def engine(demo_file: Path, tmp_path: Path) -> Iterator[Engine]:
        yield from copied_engine(demo_file, tmp_path)

    return demo_file, engine


def fake_slack_fixture() -> Callable[..., Iterator[FakeSlack]]:
    """A `fake` fixture: a fake Slack Web API on 127.0.0.1 per test. Use as ``fake = ...()``."""

    @pytest.fixture(name="fake")
    def fake() -> Iterator[FakeSlack]:
        with FakeSlack() as server:
            yield server

    return fake
