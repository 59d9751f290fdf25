"""The Teams app manifest and package: valid against the Teams manifest 1.29 schema, upload-ready."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import jsonschema
from PIL import Image
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.teams_package import MANIFEST_DIR, manifest
from tests.conftest import make_assistant

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "schemas" / "teams-manifest-1.29.schema.json").read_text()
)
APP_ID = "8f0f6a1e-4d1c-4a7e-9a57-1e0b2b7c1d11"


def schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_manifest_is_valid_and_names_its_icons() -> None:
    document = json.loads((MANIFEST_DIR / "manifest.json").read_text())
    assert schema_errors(document) == []
    assert document["manifestVersion"] == "1.29"
    (bot,) = document["bots"]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert (MANIFEST_DIR / document["icons"]["color"]).is_file()
    assert (MANIFEST_DIR / document["icons"]["outline"]).is_file()


def test_icons_have_the_sizes_and_colours_teams_requires() -> None:
    color = Image.open(MANIFEST_DIR / "color.png")
    assert color.format == "PNG" and color.size == (192, 192)
    outline = Image.open(MANIFEST_DIR / "outline.png").convert("RGBA")
    assert outline.size == (32, 32)
    pixels = {outline.getpixel((x, y)) for x in range(32) for y in range(32)}
    # White on transparent: every pixel is either fully transparent or white.
    assert all(alpha == 0 or (r, g, b) == (255, 255, 255) for r, g, b, alpha in pixels)
    assert any(alpha == 0 for *_, alpha in pixels) and any(alpha for *_, alpha in pixels)


def test_the_package_command_zips_an_upload_ready_app(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "spendbot-teams.zip"
    result = CliRunner().invoke(app, ["teams-package", "--out", str(out), "--app-id", APP_ID])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        document = json.loads(package.read("manifest.json"))
        for name in ("color.png", "outline.png"):
            assert package.read(name) == (MANIFEST_DIR / name).read_bytes()
            Image.open(io.BytesIO(package.read(name))).verify()
    assert schema_errors(document) == []
    assert document["id"] == APP_ID and document["bots"][0]["botId"] == APP_ID
    assert manifest()["id"] != APP_ID  # the source keeps its placeholder


def test_every_suggested_command_is_understood(sqlite_engine: Engine) -> None:
    assistant = make_assistant(sqlite_engine, datetime(2026, 11, 29, 12))
    (commands,) = manifest()["bots"][0]["commandLists"]
    for command in commands["commands"]:
        reply = assistant.ask(command["title"], "teams:someone").reply
        assert reply.data.get("error") != "not understood", command["title"]
