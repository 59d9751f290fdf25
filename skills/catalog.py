"""Imports every skill module, in the order help lists them, so the registry holds all skills."""

from __future__ import annotations

import importlib

from skills.registry import SKILLS, Registry

SKILL_MODULES = (
    "skills.spend",
    "skills.spend_change",
    "skills.forecast",
    "skills.owners",
    "skills.budgets",
    "skills.budget_nesting",
    "skills.unit_costs",
    "skills.anomalies",
    "skills.digest",
    "skills.schedules",
    "skills.data_status",
    "skills.actions",
    "skills.audit",
    "skills.roles",
    "skills.bot_usage",
    "skills.gpus",
    "skills.gpu_offhours",
    "skills.gpu_efficiency",
    "skills.help",
)


def load_skills() -> Registry:
    """The registry with every skill registered."""
    for module in SKILL_MODULES:
        importlib.import_module(module)
    SKILLS.order_by_module(SKILL_MODULES)
    return SKILLS
