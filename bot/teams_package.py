"""The Teams app package: manifests/teams zipped (manifest.json and two icons at its root)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "manifests" / "teams"
FILES = ("manifest.json", "color.png", "outline.png")
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"


def manifest(app_id: str | None = None, source: Path = MANIFEST_DIR) -> dict:
    """The manifest, with the bot's Microsoft App ID as app id and bot id when one is given."""
    data = json.loads((source / "manifest.json").read_text())
    if app_id:
        data["id"] = app_id
        for bot in data.get("bots", []):
            bot["botId"] = app_id
    return data


def build_package(out: Path, app_id: str | None = None, source: Path = MANIFEST_DIR) -> Path:
    """Write the upload-ready zip to `out` (parents created) and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest(app_id, source), indent=2) + "\n")
        for name in FILES[1:]:
            package.write(source / name, arcname=name)
    return out
