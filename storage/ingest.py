"""Loading FOCUS files into the cost store: validated, atomic, and idempotent per slice."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy import text as sql_text

from skills.errors import UserError
from storage.bulk import bulk_insert
from storage.focus import COLUMNS, GPU_INSTANCE_PATTERN, REQUIRED, FocusColumn
from storage.models import cost_line_items, cost_tags, ingest_slices
from storage.readers import read_chunks

SliceKey = tuple[str, str, datetime]
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


def _null_mask(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype("string").str.strip().isin(NULL_TOKENS)


def _convert(values: pd.Series, column: FocusColumn, source: str, first_row: int) -> list:
    """Convert one column of a chunk to Python values, raising IngestError on a bad cell."""
    nulls = _null_mask(values)
    if column.required and nulls.any():
        row = first_row + int(nulls.to_numpy().nonzero()[0][0])
        raise _fail(source, row, column.focus_name, None, "a value is required")
    if column.kind in ("money", "number"):
        parsed = pd.to_numeric(values.where(~nulls), errors="coerce")
    elif column.kind == "datetime":
        parsed = pd.to_datetime(values.where(~nulls), errors="coerce", utc=True, format="ISO8601")
    else:
        return values.astype("string").str.strip().astype(object).where(~nulls, None).tolist()
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
    return [None if null else number for number, null in zip(parsed.tolist(), nulls, strict=True)]


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
    pattern = f"({GPU_INSTANCE_PATTERN.pattern})"
    found = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for name in searched:
        text = frame[name].astype("string")
        found = found.combine_first(text.str.extract(pattern, flags=GPU_INSTANCE_PATTERN.flags)[0])
    return [None if pd.isna(value) else str(value) for value in found]


class _SliceWriter:
    """Inserts rows within one transaction, replacing each slice the first time it is seen."""

    def __init__(self, connection: Connection, now: datetime, report: IngestReport) -> None:
        self.connection = connection
        self.now = now
        self.report = report
        self.slice_ids: dict[SliceKey, int] = {}
        self.slice_rows: dict[int, int] = defaultdict(int)

    def slice_id(self, key: SliceKey, source: str) -> int:
        if key in self.slice_ids:
            return self.slice_ids[key]
        provider, account, period = key
        existing = self.connection.execute(
            select(ingest_slices.c.id).where(
                ingest_slices.c.provider_name == provider,
                ingest_slices.c.billing_account_id == account,
                ingest_slices.c.billing_period_start == period,
            )
        ).scalar_one_or_none()
        if existing is not None:
            self.connection.execute(delete(cost_tags).where(cost_tags.c.slice_id == existing))
            self.connection.execute(
                delete(cost_line_items).where(cost_line_items.c.slice_id == existing)
            )
            self.report.replaced_slices += 1
            slice_id = existing
        else:
            slice_id = self.connection.execute(
                insert(ingest_slices).values(
                    provider_name=provider,
                    billing_account_id=account,
                    billing_period_start=period,
                    source=source,
                    row_count=0,
                    loaded_at=self.now,
                )
            ).inserted_primary_key[0]
        self.slice_ids[key] = slice_id
        return slice_id

    def write(self, values: dict[str, list], tags: list[dict[str, str]]) -> None:
        ids = self._reserve_ids(len(tags))
        bulk_insert(self.connection, cost_line_items, {"id": ids, **values})
        tag_rows = [
            (line_id, slice_id, key, value)
            for line_id, slice_id, row_tags in zip(ids, values["slice_id"], tags, strict=True)
            for key, value in row_tags.items()
        ]
        if tag_rows:
            bulk_insert(
                self.connection,
                cost_tags,
                dict(
                    zip(
                        ("line_item_id", "slice_id", "key", "value"),
                        zip(*tag_rows, strict=True),
                        strict=True,
                    )
                ),
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
        for slice_id, count in self.slice_rows.items():
            self.connection.execute(
                update(ingest_slices)
                .where(ingest_slices.c.id == slice_id)
                .values(row_count=count, loaded_at=self.now, source=sources[slice_id])
            )


def _load_frame(
    writer: _SliceWriter, frame: pd.DataFrame, source: str, first_row: int
) -> dict[int, str]:
    names = _match_columns(source, frame.columns)
    values = {
        column.name: _convert(frame[name], column, source, first_row)
        for name, column in names.items()
    }
    count = len(frame)
    gpu_types = _gpu_instance_types(frame, names)
    tags_text = values.pop("tags", [None] * count)
    keys = list(
        zip(
            values["provider_name"],
            values["billing_account_id"],
            values["billing_period_start"],
            strict=True,
        )
    )
    slice_ids = {key: writer.slice_id(key, source) for key in dict.fromkeys(keys)}
    values["slice_id"] = [slice_ids[key] for key in keys]
    for slice_id, rows_in_slice in Counter(values["slice_id"]).items():
        writer.slice_rows[slice_id] += rows_in_slice
    values.update(
        tags=tags_text,
        gpu_instance_type=gpu_types,
        is_gpu=[found is not None for found in gpu_types],
    )
    tags = [
        _parse_tags(text, source, first_row + index) if text is not None else {}
        for index, text in enumerate(tags_text)
    ]
    _account(writer.report, values)
    if count:
        writer.write(values, tags)
    return dict.fromkeys(slice_ids.values(), source)


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
        writer = _SliceWriter(connection, now or datetime.now(UTC).replace(tzinfo=None), report)
        sources: dict[int, str] = {}
        for path in paths:
            done = 0
            for chunk in read_chunks(path):
                sources.update(_load_frame(writer, chunk.frame, path.name, chunk.first_row))
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
        writer = _SliceWriter(connection, now or datetime.now(UTC).replace(tzinfo=None), report)
        writer.finish(_load_frame(writer, frame.astype(object), source, 1))
    return report
