"""Role grants: which identity holds which role, for every team or for one team."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, or_, select

from storage.models import role_grants

ALL_TEAMS = "*"


@dataclass(frozen=True)
class Grant:
    """One role held by one identity."""

    identity: str
    role: str
    team: str
    granted_by: str
    granted_at: datetime


def holder(
    connection: Connection, identities: Iterable[str], role: str, team: str | None = None
) -> str | None:
    """The first of `identities` (a person, then their groups) holding `role` for `team`."""
    identities = list(identities)
    teams = [ALL_TEAMS] if team is None else [ALL_TEAMS, team]
    statement = select(role_grants.c.identity).where(
        role_grants.c.identity.in_(identities),
        role_grants.c.role == role,
        or_(*(role_grants.c.team == each for each in teams)),
    )
    found = set(connection.execute(statement).scalars())
    return next((identity for identity in identities if identity in found), None)


def holds(
    connection: Connection, identities: Iterable[str], role: str, team: str | None = None
) -> bool:
    """Whether any of `identities` (a person and their groups) holds `role` for `team`."""
    return holder(connection, identities, role, team) is not None


def grant(
    connection: Connection, identity: str, role: str, team: str, *, by: str, at: datetime
) -> bool:
    """Grant `role`; False when the identity already held it."""
    if has_exactly(connection, identity, role, team):
        return False
    connection.execute(
        insert(role_grants).values(
            identity=identity, role=role, team=team, granted_by=by, granted_at=at
        )
    )
    return True


def revoke(connection: Connection, identity: str, role: str, team: str) -> bool:
    """Revoke `role`; False when the identity did not hold it."""
    result = connection.execute(
        delete(role_grants).where(
            role_grants.c.identity == identity,
            role_grants.c.role == role,
            role_grants.c.team == team,
        )
    )
    return result.rowcount > 0


def has_exactly(connection: Connection, identity: str, role: str, team: str) -> bool:
    """Whether this very grant (identity, role, team) exists."""
    statement = select(role_grants.c.id).where(
        role_grants.c.identity == identity,
        role_grants.c.role == role,
        role_grants.c.team == team,
    )
    return connection.execute(statement).first() is not None


def list_grants(engine: Engine) -> list[Grant]:
    """Every grant, by identity, role and team."""
    statement = select(role_grants).order_by(
        role_grants.c.identity, role_grants.c.role, role_grants.c.team
    )
    with engine.connect() as connection:
        return [
            Grant(row.identity, row.role, row.team, row.granted_by, row.granted_at)
            for row in connection.execute(statement)
        ]
