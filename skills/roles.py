"""The role_grant and role_revoke skills: who may run and approve guarded skills.

A role change asked for in chat always waits for a person with the admin role to approve it,
even when an admin asked (they may approve their own): the words may have come through an LLM
that read something it should not obey, and a click is what a model cannot fake. Operators with
database access grant directly with ``spendbot roles grant`` (how the first admin is made).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from skills.errors import UserError
from skills.identities import parse_identity
from skills.registry import SKILLS, ActionPlan, ApprovalPolicy, SkillContext
from skills.replies import Reply
from storage import roles
from storage.roles import ALL_TEAMS

ROLE = re.compile(r"[a-z][a-z0-9_-]{0,99}")
_HINT = "e.g. 'grant finops to slack:U123 for team research' or 'revoke admin from alice'"


class RoleArgs(BaseModel):
    """Arguments of role_grant and role_revoke."""

    identity: str = Field(description="terminal:NAME, slack:U123, slack-group:S456 or teams:<id>.")
    role: str = Field(description="A role such as admin, finops or owner.")
    team: str | None = Field(None, description="Only for this team; empty means every team.")

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str) -> str:
        return parse_identity(value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        value = value.strip().lower()
        if not ROLE.fullmatch(value):
            raise ValueError("a role is a lower-case word, e.g. finops")
        return value

    @property
    def scope(self) -> str:
        """The team column value: the team, or every team."""
        return self.team or ALL_TEAMS

    def describe(self) -> str:
        """Role, identity and scope in words."""
        where = f"team {self.team}" if self.team else "every team"
        return f"role '{self.role}' for {where}"


_TEAM = r"(?:\s+(?:for|on|in)\s+(?:the\s+)?(?:team\s+)?['\"]?(?P<team>[\w-]+)['\"]?(?:\s+team)?)?"


def _parse(pattern: str, text: str) -> RoleArgs:
    match = re.search(pattern + _TEAM, text, re.IGNORECASE)
    if not match:
        raise UserError("I could not tell who gets which role.", _HINT)
    return RoleArgs(identity=match["who"], role=match["role"], team=match["team"])


ROLE_POLICY = ApprovalPolicy(required=True, allow_self_approval=True)

_ROLE = r"(?:the\s+)?(?:role\s+)?['\"]?(?P<role>[\w-]+)['\"]?(?:\s+role)?"
_WHO = r"(?P<who>@?[\w:.@-]+)"


def parse_grant_text(text: str, context: SkillContext) -> RoleArgs:
    """'grant finops to slack:U1 for team research', 'make alice an admin'."""
    if match := re.search(r"\bmake\s+" + _WHO + r"\s+(?:an?\s+)?(?P<role>[\w-]+)", text, re.I):
        return RoleArgs(identity=match["who"], role=match["role"])
    return _parse(r"\b(?:grant|give|add)\s+" + _ROLE + r"\s+to\s+" + _WHO, text)


def parse_revoke_text(text: str, context: SkillContext) -> RoleArgs:
    """'revoke finops from slack:U1', 'remove the admin role from alice'."""
    return _parse(r"\b(?:revoke|remove|take away)\s+" + _ROLE + r"\s+from\s+" + _WHO, text)


def plan_grant(context: SkillContext, args: RoleArgs) -> ActionPlan:
    """Granting one role to one identity."""
    return ActionPlan(
        summary=f"Grant {args.describe()} to {args.identity}",
        targets=({"id": args.identity, "role": args.role, "team": args.scope},),
        impact=f"{args.identity} may run and approve what needs '{args.role}'",
    )


def plan_revoke(context: SkillContext, args: RoleArgs) -> ActionPlan:
    """Revoking one role from one identity."""
    return ActionPlan(
        summary=f"Revoke {args.describe()} from {args.identity}",
        targets=({"id": args.identity, "role": args.role, "team": args.scope},),
        impact=f"{args.identity} may no longer run or approve what needs '{args.role}'",
    )


def _holds(context: SkillContext, args: RoleArgs) -> bool:
    with context.engine.connect() as connection:
        return roles.has_exactly(connection, args.identity, args.role, args.scope)


@SKILLS.skill(
    name="role_grant",
    args=RoleArgs,
    parse_text=parse_grant_text,
    command="grant",
    examples=("grant finops to slack:U123ABC", "grant owner to teams:6f2a01 for team research"),
    triggers=(r"\b(grant|give)\b.*\bto\b|\bmake\b.+\b(admin|finops|owner|approver)\b",),
    risk="write",
    permission="admin",
    plan=plan_grant,
    policy=ROLE_POLICY,
    revalidate=lambda context, args, target: "already holds it" if _holds(context, args) else None,
)
def role_grant(context: SkillContext, args: RoleArgs) -> Reply:
    """Give someone (a Slack or Teams user or group) a role: admin, finops, owner of a team."""
    with context.engine.begin() as connection:
        roles.grant(
            connection, args.identity, args.role, args.scope, by=context.user, at=context.now
        )
        context.audit(
            connection,
            event="role_granted",
            skill="role_grant",
            detail={"identity": args.identity, "role": args.role, "team": args.scope},
        )
    return Reply(text=f"{args.identity} now holds {args.describe()}.")


@SKILLS.skill(
    name="role_revoke",
    args=RoleArgs,
    parse_text=parse_revoke_text,
    command="revoke",
    examples=("revoke finops from slack:U123ABC", "remove the admin role from alice"),
    triggers=(r"\b(revoke|remove|take away)\b.*\bfrom\b",),
    risk="write",
    permission="admin",
    plan=plan_revoke,
    policy=ROLE_POLICY,
    revalidate=lambda context, args, target: None if _holds(context, args) else "does not hold it",
)
def role_revoke(context: SkillContext, args: RoleArgs) -> Reply:
    """Take a role away from someone."""
    with context.engine.begin() as connection:
        roles.revoke(connection, args.identity, args.role, args.scope)
        context.audit(
            connection,
            event="role_revoked",
            skill="role_revoke",
            detail={"identity": args.identity, "role": args.role, "team": args.scope},
        )
    return Reply(text=f"{args.identity} no longer holds {args.describe()}.")
