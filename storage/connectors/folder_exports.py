"""GCP and Azure FOCUS exports read from a folder: a local copy, or a gcsfuse/blobfuse mount.

Google Cloud: a scheduled BigQuery query exports the FOCUS view with ``EXPORT DATA`` to
``<folder>/<billing period>/<run>/*.parquet`` (or ``.csv``/``.csv.gz``); the period folder's name
holds ``YYYY-MM`` (``BillingPeriod=2026-11``) and run folders sort by time (``20261120T060000``).
Tags arrive as a list of ``{key, value}`` structs (Parquet) or its JSON text (CSV).

Azure: Cost Management's FOCUS exports write ``<root>/<export>/<YYYYMMDD-YYYYMMDD>/<run id>/``
with a ``manifest.json`` naming the run's part files (``blobs``, container-relative) and the run's
``startDate`` and ``submittedTime``. Tags are JSON object text, or, in older exports, the object's
members without their braces.

Only the newest run of each export and billing period is read, and all of it is read before
anything is stored, so a restatement replaces the period and a bad file stores nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from skills.errors import UserError
from storage.connectors.base import ConnectorError
from storage.ingest import _match_columns
from storage.readers import file_format, read_chunks

Provider = Literal["gcp", "azure"]

SOURCE_NAMES: dict[Provider, str] = {"gcp": "gcp-exports", "azure": "azure-exports"}
MOUNT_HINTS: dict[Provider, str] = {
    "gcp": "mount the bucket with gcsfuse (or copy it with gcloud storage rsync) and set the folder",
    "azure": "mount the container with blobfuse2 (or copy it with azcopy sync) and set the folder",
}
_PERIOD = re.compile(r"(20\d\d)-?(0[1-9]|1[0-2])")
_MANIFEST_NAMES = ("manifest.json", "_manifest.json")


@dataclass(frozen=True)
class FolderExportConfig:
    """Which provider's layout to expect and the folder the export is delivered to."""

    provider: Provider
    folder: str

    @property
    def source(self) -> str:
        """The `source` recorded on each slice loaded from this export."""
        return f"{self.provider} focus export {self.folder.rstrip('/')}"


@dataclass(frozen=True)
class ExportRun:
    """One delivery of one export for one billing period; the greatest `order` is the newest."""

    export: str
    period: date
    order: tuple[str, str]
    name: str
    files: tuple[Path, ...]


def _is_data_file(path: Path) -> bool:
    try:
        file_format(path)
    except UserError:
        return False
    return path.is_file()


def gcp_runs(folder: Path) -> list[ExportRun]:
    """Every run folder under `<folder>/<period>/`, each with its data files."""
    runs = []
    for period_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        match = _PERIOD.search(period_dir.name)
        if not match:
            continue
        period = date(int(match[1]), int(match[2]), 1)
        for run_dir in sorted(p for p in period_dir.iterdir() if p.is_dir()):
            files = tuple(sorted(p for p in run_dir.iterdir() if _is_data_file(p)))
            if files:
                runs.append(ExportRun("", period, (run_dir.name, ""), str(run_dir), files))
    return runs


def _manifest_run(folder: Path, path: Path) -> ExportRun | None:
    """The run a manifest describes, or None for a dataset other than FOCUS cost."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8-sig"))
        config = manifest.get("exportConfig") or {}
        run = manifest["runInfo"]
        names = [str(blob["blobName"]).strip().lstrip("/") for blob in manifest["blobs"]]
        start = datetime.fromisoformat(str(run["startDate"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConnectorError(
            f"{path}: not a Cost Management export manifest (runInfo.startDate and blobs)"
        ) from None
    if "focus" not in str(config.get("type") or "FocusCost").lower():
        return None
    files = []
    for name in names:
        # blobName is relative to the container; the folder may be the container or a copy of
        # the run's own folder.
        candidates = (folder / name, path.parent / Path(name).name)
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise ConnectorError(f"{path}: names {name}, which is not in {folder}")
        files.append(found)
    return ExportRun(
        str(config.get("resourceId") or config.get("exportName") or ""),
        start.date().replace(day=1),
        (str(run.get("submittedTime") or ""), str(path)),
        str(path),
        tuple(files),
    )


def azure_runs(folder: Path) -> list[ExportRun]:
    """Every FOCUS run whose manifest lies anywhere under `folder`."""
    manifests = sorted(path for path in folder.rglob("*") if path.name.lower() in _MANIFEST_NAMES)
    return [run for path in manifests if (run := _manifest_run(folder, path)) is not None]


def newest_runs(runs: Iterable[ExportRun], months: Iterable[date]) -> list[ExportRun]:
    """The newest run of each export and billing period among `months`."""
    wanted = set(months)
    newest: dict[tuple[str, date], ExportRun] = {}
    for run in runs:
        key = (run.export, run.period)
        if run.period in wanted and (key not in newest or run.order > newest[key].order):
            newest[key] = run
    return sorted(newest.values(), key=lambda run: (run.period, run.export))


def tags_json(value: object) -> str | None:
    """Tags as a JSON object's text, from GCP's key/value list or Azure's (brace-less) text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.upper() == "NULL":
            return None
        if not text.startswith(("{", "[")):
            text = "{" + text + "}"  # older Azure exports drop the object's braces
        parsed = json.loads(text)
    else:
        parsed = list(value)  # a Parquet list of {key, value} structs
    if isinstance(parsed, list):
        pairs = (
            (item["key"], item.get("value")) if isinstance(item, dict) else tuple(item)
            for item in parsed
        )
        parsed = {str(key): value for key, value in pairs}
    if not isinstance(parsed, dict):
        raise ValueError("not an object")
    return json.dumps(parsed, sort_keys=True)


def _read(path: Path) -> pd.DataFrame:
    """One file with FOCUS columns under their FOCUS names (files of a run may differ in case)."""
    try:
        frames = [chunk.frame for chunk in read_chunks(path)]
        frame = pd.concat(frames, ignore_index=True).astype(object) if frames else pd.DataFrame()
        if frame.empty:
            return frame
        frame = frame.rename(
            columns={
                name: column.focus_name
                for name, column in _match_columns(str(path), frame.columns).items()
            }
        )
    except UserError as error:
        raise ConnectorError(error.message, error.hint) from None
    if "Tags" in frame.columns:
        converted = []
        for row, value in enumerate(frame["Tags"], start=1):
            try:
                converted.append(tags_json(value))
            except (ValueError, KeyError, TypeError, IndexError):
                raise ConnectorError(
                    f"{path}: row {row}, column Tags: not a tag object or key/value list"
                ) from None
        frame["Tags"] = converted
    return frame


def fetch_folder_export(
    config: FolderExportConfig, months: list[date]
) -> tuple[pd.DataFrame, list[str]]:
    """The newest run of each billing period in `months`, as one FOCUS frame, and the runs read.

    Raises ConnectorError (nothing stored) when the folder, a manifest or a file cannot be read.
    """
    if "://" in config.folder:
        raise UserError(
            f"{config.folder}: {SOURCE_NAMES[config.provider]} reads a folder, not a URL",
            MOUNT_HINTS[config.provider],
        )
    folder = Path(config.folder)
    if not folder.is_dir():
        raise ConnectorError(f"{folder}: no such folder", MOUNT_HINTS[config.provider])
    try:
        found = gcp_runs(folder) if config.provider == "gcp" else azure_runs(folder)
        runs = newest_runs(found, months)
        frames = [_read(path) for run in runs for path in run.files]
    except OSError as error:  # an unmounted or flaky mount: "Transport endpoint is not connected"
        raise ConnectorError(f"{folder}: {error}", MOUNT_HINTS[config.provider]) from None
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(), [run.name for run in runs]
    return pd.concat(frames, ignore_index=True).astype(object), [run.name for run in runs]
