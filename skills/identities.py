"""Who is who: identities are ``kind:id`` strings shared by every transport and the role store."""

from __future__ import annotations

import re

from skills.errors import UserError

KINDS = ("terminal", "slack", "slack-group", "teams")
"""terminal user names, Slack user and user-group ids, Teams (Entra ID) AAD object ids."""
GROUP_KINDS = ("slack-group",)

IDENTITY = re.compile(r"\b(terminal|slack-group|slack|teams):([\w.@-]+)", re.IGNORECASE)

_HINT = "write terminal:NAME, slack:U123, slack-group:S456 or teams:<aad-object-id>"


def parse_identity(text: str, *, default_kind: str = "terminal") -> str:
    """A normalized identity; a bare name is taken as `default_kind` (``alice`` -> terminal:alice)."""
    text = text.strip().lstrip("@")
    if ":" not in text:
        text = f"{default_kind}:{text}"
    match = IDENTITY.fullmatch(text)
    if not match:
        raise UserError(f"{text!r} is not an identity I know", _HINT)
    kind, value = match.group(1).lower(), match.group(2)
    if kind in ("slack", "slack-group"):
        value = value.upper()
    elif kind == "teams":
        value = value.lower()
    return f"{kind}:{value}"


def is_group(identity: str) -> bool:
    """Whether the identity names a group rather than a person (groups cannot approve)."""
    return identity.split(":", 1)[0] in GROUP_KINDS
