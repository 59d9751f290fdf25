"""Deleting rows past their retention, or counting them for a dry run."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, Table, delete, func, select


def delete_rows(
    engine: Engine, table: Table, condition: ColumnElement[bool], *, dry_run: bool = False
) -> int:
    """Delete `table`'s rows matching `condition`; how many (`dry_run`: would be, none deleted)."""
    with engine.begin() as connection:
        if dry_run:
            counted = select(func.count()).select_from(table).where(condition)
            return connection.execute(counted).scalar_one()
        return connection.execute(delete(table).where(condition)).rowcount
