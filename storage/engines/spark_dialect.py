"""A SQLAlchemy dialect over a SparkSession: the store's statements compiled for Spark SQL.

The module is also the dialect's DB-API: a connection wraps a SparkSession and a cursor runs
``spark.sql`` with named parameter markers (``:name``), so every statement, vocabulary lookup
and rendered SQL goes through SQLAlchemy exactly as on the store.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import ModuleType
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import IdentifierPreparer, SQLCompiler

from storage.costs import time_bucket

apilevel = "2.0"
threadsafety = 1
paramstyle = "named"


class Error(Exception):
    """Any failure of a Spark statement (DB-API base error)."""


class Warning(Exception):
    """DB-API warning (never raised)."""


class InterfaceError(Error):
    """DB-API interface error."""


class DatabaseError(Error):
    """A statement Spark could not analyse or run."""


class DataError(DatabaseError):
    """DB-API data error."""


class OperationalError(DatabaseError):
    """DB-API operational error."""


class IntegrityError(DatabaseError):
    """DB-API integrity error."""


class InternalError(DatabaseError):
    """DB-API internal error."""


class ProgrammingError(DatabaseError):
    """DB-API programming error."""


class NotSupportedError(DatabaseError):
    """DB-API not-supported error."""


class Cursor:
    """Runs one statement at a time on the session and holds its collected rows."""

    arraysize = 1

    def __init__(self, session: Any) -> None:
        self._session = session
        self._rows: list[tuple] = []
        self.description: list[tuple] | None = None
        self.rowcount = -1

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run `operation` with its named parameters and collect the result."""
        try:
            frame = self._session.sql(operation, args=dict(parameters) if parameters else None)
            rows = frame.collect()
        except Exception as error:  # Spark raises its own analysis and execution errors
            raise DatabaseError(str(error)) from error
        fields = frame.schema.fields
        self.description = [
            (field.name, field.dataType.simpleString(), None, None, None, None, True)
            for field in fields
        ] or None
        self._rows = [tuple(row) for row in rows]
        self.rowcount = len(self._rows)

    def executemany(self, operation: str, seq: Sequence[Mapping[str, Any]]) -> None:
        """Run `operation` once per parameter set."""
        for parameters in seq:
            self.execute(operation, parameters)

    def fetchone(self) -> tuple | None:
        """The next row, or None."""
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        """The next `size` rows."""
        size = size or self.arraysize
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    def fetchall(self) -> list[tuple]:
        """Every remaining row."""
        taken, self._rows = self._rows, []
        return taken

    def close(self) -> None:
        """Drop the collected rows."""
        self._rows = []

    def setinputsizes(self, sizes: object) -> None:
        """DB-API no-op."""

    def setoutputsize(self, size: object, column: object = None) -> None:
        """DB-API no-op."""


class Connection:
    """A DB-API connection on a SparkSession; Spark SQL reads have no transactions."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def cursor(self) -> Cursor:
        """A cursor on the session."""
        return Cursor(self.session)

    def commit(self) -> None:
        """Nothing to commit."""

    def rollback(self) -> None:
        """Nothing to roll back."""

    def close(self) -> None:
        """The session outlives its connections."""


class SparkCompiler(SQLCompiler):
    """Spark string literals escape with backslashes; timestamps are typed literals."""

    def render_literal_value(self, value: Any, type_: Any) -> str:
        """`value` as a Spark SQL literal."""
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if isinstance(value, datetime):
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        if isinstance(value, date):
            return f"DATE '{value.isoformat()}'"
        return super().render_literal_value(value, type_)


class SparkIdentifierPreparer(IdentifierPreparer):
    """Backtick-quoted identifiers."""

    def __init__(self, dialect: DefaultDialect) -> None:
        super().__init__(dialect, initial_quote="`", escape_quote="`")


class SparkDialect(DefaultDialect):
    """Spark SQL through pyspark: reads only, on one local or cluster SparkSession."""

    name = "spark"
    driver = "pyspark"
    statement_compiler = SparkCompiler
    preparer = SparkIdentifierPreparer
    supports_statement_cache = True
    supports_native_boolean = True
    supports_native_decimal = True
    default_paramstyle = "named"

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        """The DB-API: this module."""
        return sys.modules[__name__]

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Nothing to roll back."""

    def do_commit(self, dbapi_connection: Any) -> None:
        """Nothing to commit."""

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return ()

    def _get_default_schema_name(self, connection: Any) -> str:
        return "default"

    def get_isolation_level(self, dbapi_connection: Any) -> str:
        """Spark has no transactions; reads see the files as they are."""
        return "AUTOCOMMIT"


registry.register("spark", "storage.engines.spark_dialect", "SparkDialect")


@compiles(time_bucket, "spark")
def _time_bucket_spark(element: time_bucket, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    pattern = "yyyy-MM" if element.unit == "month" else "yyyy-MM-dd"
    return f"date_format(date_trunc('{element.unit}', {arg}), '{pattern}')"
