"""Readers that stream FOCUS files (CSV, gzipped CSV, Parquet) in chunks with byte progress."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from skills.errors import UserError

CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Chunk:
    """Rows of one file: `first_row` is the 1-based data row number of the chunk's first row."""

    frame: pd.DataFrame
    first_row: int
    bytes_done: int


def file_format(path: Path) -> str:
    """Return ``csv``, ``csv.gz`` or ``parquet`` for `path`, or raise a UserError."""
    name = path.name.lower()
    for suffix, kind in ((".csv.gz", "csv.gz"), (".csv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return kind
    raise UserError(
        f"{path}: unsupported file type",
        "FOCUS files must end in .csv, .csv.gz or .parquet",
    )


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Yield `path` in chunks; CSV cells stay strings so validation can report bad cells."""
    if file_format(path) == "parquet":
        yield from _parquet_chunks(path, rows)
    else:
        yield from _csv_chunks(path, rows)


def _csv_chunks(path: Path, rows: int) -> Iterator[Chunk]:
    with path.open("rb") as raw:
        stream: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw
        )
        try:
            reader = pd.read_csv(
                stream, dtype=str, keep_default_na=False, chunksize=rows, encoding="utf-8-sig"
            )
            first_row = 1
            for frame in reader:
                yield Chunk(frame, first_row, raw.tell())
                first_row += len(frame)
        except pd.errors.EmptyDataError:
            raise UserError(f"{path}: the file is empty", "expected a FOCUS header row") from None
        except (
            pd.errors.ParserError,
            UnicodeDecodeError,
            gzip.BadGzipFile,
            EOFError,
            zlib.error,
        ) as error:
            raise UserError(f"{path}: not a readable CSV file: {error}") from None


def _parquet_chunks(path: Path, rows: int) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path}: not a readable Parquet file: {error}") from None
    total_rows = max(parquet.metadata.num_rows, 1)
    size = path.stat().st_size
    first_row = 1
    for batch in parquet.iter_batches(batch_size=rows):
        frame = batch.to_pandas()
        first_row_next = first_row + len(frame)
        yield Chunk(frame, first_row, size * (first_row_next - 1) // total_rows)
        first_row = first_row_next
