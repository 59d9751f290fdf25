"""AWS Data Exports (FOCUS 1.0, or legacy CUR 2.0) read from S3 through their manifests.

An export delivers `<root>/data/BILLING_PERIOD=YYYY-MM/...` files and a Manifest.json under
`<root>/metadata/BILLING_PERIOD=YYYY-MM/` naming them (`dataFiles`). Each refresh, and each late
restatement, writes a new manifest; only the newest manifest of a billing period is read, and only
the files it names, so superseded files left in the bucket are never counted.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import pandas as pd

from skills.errors import UserError
from storage.connectors.base import ConnectorError
from storage.connectors.cur import cur_to_focus, is_cur
from storage.readers import read_chunks

SOURCE_PREFIX = "aws data export"


@dataclass(frozen=True)
class AwsExportConfig:
    """The export's root (`s3://bucket/prefix/export-name`) and how to reach S3."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 5

    @property
    def source(self) -> str:
        """The `source` recorded on each slice loaded from this export."""
        return f"{SOURCE_PREFIX} {self.uri.rstrip('/')}"


def _split(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise UserError(
            f"{uri}: not an S3 export location",
            "set it to s3://BUCKET/PREFIX/EXPORT-NAME (the folder holding data/ and metadata/)",
        )
    return parts.netloc, parts.path.strip("/")


def s3_client(config: AwsExportConfig):
    """An S3 client with botocore's standard retry mode (backoff on throttling and 5xx)."""
    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": config.max_attempts}
        ),
    )


def newest_manifest(client, bucket: str, root: str, period: str) -> dict | None:
    """The newest Manifest.json object (LastModified, then key) of one billing period."""
    prefix = f"{root}/metadata/BILLING_PERIOD={period}/".lstrip("/")
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(
            item for item in page.get("Contents", []) if item["Key"].endswith("Manifest.json")
        )
    return max(found, key=lambda item: (item["LastModified"], item["Key"]), default=None)


def _read_file(client, uri: str, folder: Path) -> pd.DataFrame:
    bucket, key = _split(uri)
    local = folder / Path(key).name
    client.download_file(bucket, key, str(local))
    frames = [chunk.frame for chunk in read_chunks(local)]
    local.unlink()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fetch_aws_export(config: AwsExportConfig, months: list[date]) -> tuple[pd.DataFrame, list[str]]:
    """The newest delivery of each billing period in `months`, as one FOCUS frame.

    Returns the frame and the manifests read. Raises ConnectorError (nothing stored) when a
    manifest or a file it names cannot be read.
    """
    bucket, root = _split(config.uri)
    client = s3_client(config)
    frames: list[pd.DataFrame] = []
    manifests: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="spendbot-export-") as folder:
            for month in months:
                period = f"{month:%Y-%m}"
                item = newest_manifest(client, bucket, root, period)
                if item is None:
                    continue
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                try:
                    manifest = json.loads(body)
                    files = list(manifest["dataFiles"])
                except (ValueError, KeyError, TypeError):
                    raise ConnectorError(
                        f"s3://{bucket}/{item['Key']}: not a Data Exports manifest (no dataFiles)"
                    ) from None
                manifests.append(f"s3://{bucket}/{item['Key']}")
                for uri in files:
                    frame = _read_file(client, uri, Path(folder))
                    frames.append(cur_to_focus(frame) if is_cur(frame.columns) else frame)
    except botocore.exceptions.BotoCoreError as error:
        raise ConnectorError(f"AWS export {config.uri}: {error}") from None
    except botocore.exceptions.ClientError as error:
        raise ConnectorError(
            f"AWS export {config.uri}: {error}",
            "the reader needs s3:ListBucket on the bucket and s3:GetObject on the export prefix",
        ) from None
    if not frames:
        return pd.DataFrame(), manifests
    return pd.concat(frames, ignore_index=True).astype(object), manifests
