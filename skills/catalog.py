"""Imports every skill module so the registry holds all skills."""

from __future__ import annotations

from skills import data_status, help, spend  # noqa: F401  (imported for their registrations)
from skills.registry import SKILLS, Registry


def load_skills() -> Registry:
    """The registry with every skill registered."""
    return SKILLS
