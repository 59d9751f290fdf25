"""The container build's steps, run here: Dockerfile lint, the wheel, and the installed app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    runtime = lines[max(index for index, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert any(
        line.startswith("USER ") and line.split()[1] not in ("root", "0") for line in runtime
    )
    assert any(line.startswith("HEALTHCHECK ") for line in runtime)
    assert 'CMD ["serve"]' in runtime and 'ENTRYPOINT ["spendbot"]' in runtime


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the Dockerfile's build stage makes (`pip wheel --no-deps .`), built offline."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("spendbot-*.whl")
    return built


def test_wheel_carries_every_package_and_the_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("bot", "skills", "storage"):
        assert f"{package}/__init__.py" in names
    migrations = sorted(name for name in names if name.startswith("storage/migrations/versions/"))
    on_disk = sorted(
        f"storage/migrations/versions/{path.name}"
        for path in (ROOT / "storage/migrations/versions").glob("*.py")
    )
    assert migrations == on_disk
    assert "storage/migrations/env.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_migrates_and_answers(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "SPENDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bot, sys; print(bot.__file__); sys.argv = ['spendbot', 'ask', 'what data do you have?']; from bot.cli import app; app()",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.startswith(str(target)), result.stdout + result.stderr
    assert "No billing data is loaded yet" in result.stdout, result.stdout + result.stderr
