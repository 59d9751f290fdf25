"""Loading FOCUS files into the cost store: validated, atomic, and idempotent per slice."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy import text as sql_text

from skills.errors import UserError
from storage.bulk import bulk_insert
from storage.clock import utc_now
from storage.focus import COLUMNS, GPU_INSTANCE_PATTERN, REQUIRED, FocusColumn
from storage.models import cost_line_items, cost_tags, ingest_slices
from storage.readers import read_chunks

SliceKey = tuple[str, str, datetime]
T = TypeVar("T")
NULL_TOKENS = frozenset({"", "NULL", "null"})


class IngestError(UserError):
    """A malformed FOCUS file; names the file, row, line and column at fault."""


@dataclass
class IngestReport:
    """What one ingest run loaded."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    providers: set[str] = field(default_factory=set)
    billing_periods: set[str] = field(default_factory=set)
    replaced_slices: int = 0
    effective_cost: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    billed_cost: dict[str, float] = field(default_factory=lambda: defaultdict(float))


Progress = Callable[[int], None]


def _match_columns(source: str, header: Iterable[str]) -> dict[str, FocusColumn]:
    """Map file column names to FOCUS columns, ignoring case, underscores and 1.2+ renames."""

    def squash(name: str) -> str:
        return name.replace("_", "").lower()

    wanted = {
        squash(alias): column
        for column in COLUMNS
        for alias in (column.focus_name, *column.aliases)
    }
    found: dict[str, FocusColumn] = {}
    for name in header:
        column = wanted.get(squash(str(name)))
        if column and column not in found.values():
            found[str(name)] = column
    missing = [column.focus_name for column in REQUIRED if column not in found.values()]
    if missing:
        raise IngestError(
            f"{source}: missing required FOCUS column(s): {', '.join(missing)}",
            "is this a FOCUS 1.0+ export? Column names are matched case-insensitively",
        )
    return found


def _fail(source: str, row: int, column: str, value: object, problem: str) -> IngestError:
    line = f", line {row + 1}" if not source.lower().endswith(".parquet") else ""
    return IngestError(f"{source}: row {row}{line}, column {column}: {problem} ({value!r})")


def _convert(values: pd.Series, column: FocusColumn, source: str, first_row: int) -> list:
    """Convert one column of a chunk to Python values, raising IngestError on a bad cell."""
    text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("string")
    stripped = text.str.strip()
    nulls = values.isna() | stripped.isin(NULL_TOKENS)
    if column.required and nulls.any():
        row = first_row + int(nulls.to_numpy().nonzero()[0][0])
        raise _fail(source, row, column.focus_name, None, "a value is required")
    if column.kind in ("money", "number"):
        parsed = pd.to_numeric(values.where(~nulls), errors="coerce")
    elif column.kind == "datetime":
        parsed = pd.to_datetime(values.where(~nulls), errors="coerce", utc=True, format="ISO8601")
    else:
        cells = stripped.to_numpy(dtype=object, na_value=None)
        cells[nulls.to_numpy()] = None
        return cells.tolist()
    invalid = parsed.isna().to_numpy()
    if column.kind != "datetime":
        invalid = invalid | ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
    bad = invalid & ~nulls.to_numpy()
    if bad.any():
        index = int(bad.nonzero()[0][0])
        problem = "not a number" if column.kind != "datetime" else "not an ISO 8601 date-time"
        raise _fail(source, first_row + index, column.focus_name, values.iloc[index], problem)
    if column.kind == "datetime":
        # datetime64[us] -> object gives datetime.datetime (and None for NaT) in one C loop.
        return parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(object).tolist()
    return parsed.astype(object).where(~nulls, None).tolist()


def _parse_tags(text: str | None, source: str, row: int) -> dict[str, str]:
    if text is None:
        return {}
    try:
        tags = json.loads(text)
    except json.JSONDecodeError:
        raise _fail(source, row, "Tags", text, "not a JSON object") from None
    if not isinstance(tags, dict):
        raise _fail(source, row, "Tags", text, "not a JSON object")
    parsed: dict[str, str] = {}
    for key, value in tags.items():
        normalized = str(key).strip().lower()[:200]
        if normalized and normalized not in parsed:
            parsed[normalized] = (
                "" if value is None else value if isinstance(value, str) else json.dumps(value)
            )
    return parsed


def _gpu_instance_types(frame: pd.DataFrame, names: dict[str, FocusColumn]) -> list[str | None]:
    """Find GPU instance types in descriptive columns, extension (x_) columns included."""
    searched = [
        name
        for name, column in names.items()
        if column.name
        in ("charge_description", "sku_id", "sku_price_id", "resource_type", "resource_name")
    ] + [name for name in frame.columns if str(name).lower().startswith("x_")]
    if not searched:
        return [None] * len(frame)
    found: list[str | None] = [None] * len(frame)
    for name in searched:
        # Descriptions repeat across rows: each distinct text is searched once.
        matches: dict[str, str | None] = {}
        for index, value in enumerate(frame[name].tolist()):
            if found[index] is None and (isinstance(value, str) or not _is_missing(value)):
                text = str(value)
                if text not in matches:
                    match = GPU_INSTANCE_PATTERN.search(text)
                    matches[text] = match.group(0) if match else None
                found[index] = matches[text]
    return found


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


class _SliceWriter:
    """Inserts rows within one transaction, replacing each slice the first time it is seen."""

    def __init__(self, connection: Connection, now: datetime, report: IngestReport) -> None:
        self.connection = connection
        self.now = now
        self.report = report
        self.slice_ids: dict[SliceKey, int] = {}
        self.slice_rows: dict[int, int] = defaultdict(int)

    def slice_ids_for(self, keys: Iterable[SliceKey], source: str) -> dict[SliceKey, int]:
        """Ids of the slices `keys`; a slice seen for the first time is emptied or created.

        A few statements per chunk, whatever the number of slices in it.
        """
        keys = list(dict.fromkeys(keys))
        new = [key for key in keys if key not in self.slice_ids]
        if new:
            found = self._existing_slices(new)
            replaced = [found[key] for key in new if key in found]
            for batch in _batches(replaced):
                self.connection.execute(delete(cost_tags).where(cost_tags.c.slice_id.in_(batch)))
                self.connection.execute(
                    delete(cost_line_items).where(cost_line_items.c.slice_id.in_(batch))
                )
            self.report.replaced_slices += len(replaced)
            fresh = [key for key in new if key not in found]
            if fresh:
                statement = insert(ingest_slices).returning(
                    ingest_slices.c.id, sort_by_parameter_order=True
                )
                rows = [
                    {
                        "provider_name": provider,
                        "billing_account_id": account,
                        "billing_period_start": period,
                        "source": source,
                        "row_count": 0,
                        "loaded_at": self.now,
                    }
                    for provider, account, period in fresh
                ]
                ids = self.connection.execute(statement, rows).scalars().all()
                found.update(zip(fresh, ids, strict=True))
            self.slice_ids.update((key, found[key]) for key in new)
        return {key: self.slice_ids[key] for key in keys}

    def _existing_slices(self, keys: list[SliceKey]) -> dict[SliceKey, int]:
        wanted = set(keys)
        found: dict[SliceKey, int] = {}
        for accounts in _batches(sorted({account for _, account, _ in keys})):
            statement = select(
                ingest_slices.c.id,
                ingest_slices.c.provider_name,
                ingest_slices.c.billing_account_id,
                ingest_slices.c.billing_period_start,
            ).where(ingest_slices.c.billing_account_id.in_(accounts))
            for slice_id, *key in self.connection.execute(statement):
                if tuple(key) in wanted:
                    found[tuple(key)] = slice_id
        return found

    def write(self, values: dict[str, list], tags: list[dict[str, str]]) -> None:
        ids = self._reserve_ids(len(tags))
        bulk_insert(self.connection, cost_line_items, {"id": ids, **values})
        counts = [len(row_tags) for row_tags in tags]
        if sum(counts):
            # Column-wise, as bulk_insert takes them: no tuple per tag.
            bulk_insert(
                self.connection,
                cost_tags,
                {
                    "line_item_id": np.repeat(ids, counts).tolist(),
                    "slice_id": np.repeat(values["slice_id"], counts).tolist(),
                    "key": [key for row_tags in tags for key in row_tags],
                    "value": [value for row_tags in tags for value in row_tags.values()],
                },
            )

    def _reserve_ids(self, count: int) -> list[int]:
        """Line-item ids for `count` rows, known before the insert so tags can refer to them.

        Reserving them (rather than INSERT ... RETURNING) keeps inserts batched: SQLite runs
        RETURNING row by row when the order must match the parameters.
        """
        if self.connection.dialect.name == "postgresql":
            statement = sql_text(
                "SELECT nextval(pg_get_serial_sequence('cost_line_items', 'id')) "
                "FROM generate_series(1, :count)"
            )
            return list(self.connection.execute(statement, {"count": count}).scalars())
        # SQLite: the transaction already holds the write lock (the slice rows were written first),
        # so no other writer can take these ids.
        first = self.connection.execute(
            select(func.coalesce(func.max(cost_line_items.c.id), 0))
        ).scalar_one()
        return list(range(first + 1, first + 1 + count))

    def finish(self, sources: dict[int, str]) -> None:
        if not self.slice_rows:
            return
        statement = (
            update(ingest_slices)
            .where(ingest_slices.c.id == bindparam("slice"))
            .values(row_count=bindparam("rows"), loaded_at=self.now, source=bindparam("file"))
        )
        self.connection.execute(
            statement,
            [
                {"slice": slice_id, "rows": count, "file": sources[slice_id]}
                for slice_id, count in self.slice_rows.items()
            ],
        )


def _batches(values: list, size: int = 500) -> Iterator[list]:
    """`values` in lists of at most `size`: IN lists stay under bound-parameter limits."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class _Rows:
    """One chunk converted and validated, ready to store: column values and parsed tags."""

    values: dict[str, list]
    tags: list[dict[str, str]]
    source: str


def _prepare(frame: pd.DataFrame, source: str, first_row: int) -> _Rows:
    """Validate and convert a chunk; touches no database, so it can run ahead of the writes."""
    names = _match_columns(source, frame.columns)
    values = {
        column.name: _convert(frame[name], column, source, first_row)
        for name, column in names.items()
    }
    gpu_types = _gpu_instance_types(frame, names)
    tags_text = values.pop("tags", [None] * len(frame))
    values.update(
        tags=tags_text,
        gpu_instance_type=gpu_types,
        is_gpu=[found is not None for found in gpu_types],
    )
    # Many line items carry the same tags: each distinct text is parsed once.
    parsed: dict[str | None, dict[str, str]] = {None: {}}
    tags = []
    for index, text in enumerate(tags_text):
        if text not in parsed:
            parsed[text] = _parse_tags(text, source, first_row + index)
        tags.append(parsed[text])
    return _Rows(values, tags, source)


def _store(writer: _SliceWriter, rows: _Rows) -> dict[int, str]:
    """Write a prepared chunk into its slices; returns the slices it touched, with its file."""
    values = rows.values
    keys = list(
        zip(
            values["provider_name"],
            values["billing_account_id"],
            values["billing_period_start"],
            strict=True,
        )
    )
    slice_ids = writer.slice_ids_for(keys, rows.source)
    values["slice_id"] = [slice_ids[key] for key in keys]
    for slice_id, rows_in_slice in Counter(values["slice_id"]).items():
        writer.slice_rows[slice_id] += rows_in_slice
    _account(writer.report, values)
    if keys:
        writer.write(values, rows.tags)
    return dict.fromkeys(slice_ids.values(), rows.source)


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield `items`, producing the next one in a worker thread while the caller uses this one.

    Reading and converting a chunk then overlaps with writing the one before (SQLite and the
    CSV parser release the GIL while they work); errors surface in order, from the caller.
    """
    done = object()
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(next, items, done)
        while (item := upcoming.result()) is not done:
            upcoming = pool.submit(next, items, done)
            yield item


def _account(report: IngestReport, values: dict[str, list]) -> None:
    report.rows += len(values["provider_name"])
    report.providers.update(values["provider_name"])
    report.billing_periods.update(
        period.strftime("%Y-%m") for period in set(values["billing_period_start"])
    )
    for currency, effective, billed in zip(
        values["billing_currency"], values["effective_cost"], values["billed_cost"], strict=True
    ):
        report.effective_cost[currency] += effective
        report.billed_cost[currency] += billed


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Load FOCUS files in one transaction: all of them or, on any error, none.

    Each (provider, billing account, billing period) slice found in the files replaces what the
    store held for it, so loading the same export twice, or a restated one, never double-counts.
    `progress` is called with the number of bytes read since its last call.
    """
    paths = [Path(path) for path in paths]
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    report = IngestReport(files=[str(path) for path in paths])
    with engine.begin() as connection:
        writer = _SliceWriter(connection, now or utc_now(), report)
        sources: dict[int, str] = {}
        for path in paths:
            done = 0
            prepared = (
                (chunk, _prepare(chunk.frame, path.name, chunk.first_row))
                for chunk in read_chunks(path)
            )
            for chunk, rows in _read_ahead(prepared):
                sources.update(_store(writer, rows))
                if progress:
                    progress(chunk.bytes_done - done)
                done = chunk.bytes_done
        writer.finish(sources)
    return report


def ingest_frame(
    engine: Engine, frame: pd.DataFrame, source: str, now: datetime | None = None
) -> IngestReport:
    """Load an in-memory FOCUS frame (generated demo data, connector output) like a file."""
    report = IngestReport(files=[source])
    with engine.begin() as connection:
        writer = _SliceWriter(connection, now or utc_now(), report)
        writer.finish(_store(writer, _prepare(frame.astype(object), source, 1)))
    return report
