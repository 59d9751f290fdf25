"""Adaptive Card 1.5 rendering of platform-neutral replies: title, text, figures, chart, actions.

Figures become a FactSet (two columns) or a Table, the reply's "Metric: … · Period: …" context a
FactSet, a chart an inline PNG (palette-reduced, so the card stays under Teams' ~28 KB message
limit), a pending guarded action Approve/Deny buttons whose submits carry ``verb`` and
``action_id``, and an open anomaly alert feedback buttons (``verb``, ``feedback``, ``alert_id``).
Text from skills, data or the LLM passes through `bot.safe_text`, so it links only to allow-listed
domains.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Collection
from typing import Any

from PIL import Image

from bot.render_gpu import keep_submits
from bot.render_slack import headline, pending_action
from bot.render_text import format_cell
from bot.safe_text import safe_text
from skills.anomaly_alerts import FEEDBACK_LABELS
from skills.replies import Reply, Table
from storage.anomaly_alerts import OPEN

VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
APPROVE = "approve"
DENY = "deny"
FEEDBACK = "alert_feedback"
MAX_ROWS = 25
MAX_TEXT = 4000
CHART_BUDGET = 20_000
"""Most bytes of base64 PNG a card carries; a bigger chart is left out."""
CARD_BUDGET = 26_000
"""Most bytes of card JSON; past it the chart goes first (Teams refuses messages over ~28 KB)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(text: str, domains: Collection[str], **style: Any) -> dict[str, Any]:
    safe = safe_text(_clip(text, MAX_TEXT), domains, markup=False)
    return {"type": "TextBlock", "text": safe, "wrap": True, **style}


def _facts(pairs: list[tuple[str, str]], domains: Collection[str]) -> dict[str, Any]:
    return {
        "type": "FactSet",
        "facts": [
            {
                "title": safe_text(title, domains, markup=False),
                "value": safe_text(value, domains, markup=False),
            }
            for title, value in pairs
        ],
    }


def context_facts(context: str) -> list[tuple[str, str]] | None:
    """``Metric: X · Period: Y`` as [(Metric, X), (Period, Y)]; None if it is not in that form."""
    parts = [part.strip() for part in context.split(" · ")]
    pairs = [part.split(": ", 1) for part in parts]
    if len(pairs) < 2 or any(len(pair) != 2 for pair in pairs):
        return None
    return [(title, value) for title, value in pairs]


def _cell(text: str, domains: Collection[str], right: bool) -> dict[str, Any]:
    block = _text(text, domains, spacing="none")
    if right:
        block["horizontalAlignment"] = "right"
    return {"type": "TableCell", "items": [block]}


def table_elements(table: Table, domains: Collection[str]) -> list[dict[str, Any]]:
    """A two-column table as a FactSet, a wider one as a Table; rows past MAX_ROWS are counted."""
    rows = [[format_cell(table, i, value) for i, value in enumerate(row)] for row in table.rows]
    shown, rest = rows[:MAX_ROWS], len(rows) - MAX_ROWS
    if len(table.columns) == 2:
        elements = [_facts([(row[0], row[1]) for row in shown], domains)]
    else:
        money = table.money_columns
        head = {
            "type": "TableRow",
            "style": "emphasis",
            "cells": [_cell(str(c), domains, i in money) for i, c in enumerate(table.columns)],
        }
        body = [
            {
                "type": "TableRow",
                "cells": [_cell(v, domains, i in money) for i, v in enumerate(row)],
            }
            for row in shown
        ]
        elements = [
            {
                "type": "Table",
                "columns": [{"width": 1} for _ in table.columns],
                "rows": [head, *body],
                "firstRowAsHeader": True,
                "showGridLines": False,
            }
        ]
    if rest > 0:
        elements.append(_text(f"… and {rest} more row(s) not shown.", domains, isSubtle=True))
    return elements


def chart_image(png: bytes, title: str) -> dict[str, Any] | None:
    """The chart as an inline image, reduced to a 16-colour palette; None if still too big."""
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=16)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    if len(encoded) > CHART_BUDGET:
        return None
    return {
        "type": "Image",
        "url": f"data:image/png;base64,{encoded}",
        "altText": title,
        "size": "stretch",
    }


def approval_actions(action_id: int) -> list[dict[str, Any]]:
    """Approve and Deny submits, each carrying the verb and the action number."""
    return [
        {
            "type": "Action.Submit",
            "title": "Approve",
            "style": "positive",
            "data": {"verb": APPROVE, "action_id": action_id},
        },
        {
            "type": "Action.Submit",
            "title": "Deny",
            "style": "destructive",
            "data": {"verb": DENY, "action_id": action_id},
        },
    ]


def feedback_actions(alert_id: int) -> list[dict[str, Any]]:
    """Expected, Planned, Not an issue, Snooze 7 days: each submit carries the alert's number."""
    return [
        {
            "type": "Action.Submit",
            "title": label,
            "data": {"verb": FEEDBACK, "feedback": feedback, "alert_id": alert_id},
        }
        for feedback, label in FEEDBACK_LABELS.items()
    ]


def reply_card(
    reply: Reply,
    *,
    domains: Collection[str] = (),
    chart: bytes | None = None,
    note: str | None = None,
    buttons: bool = True,
) -> dict[str, Any]:
    """The Adaptive Card for `reply`: title, text, figures, context, chart, note, buttons.

    `chart` is a PNG to show under the figures; `note` a line written by spendbot itself (who
    decided, and when); a pending action gets Approve/Deny, an open anomaly alert its feedback
    buttons, unless `buttons` is false.
    """
    title = headline(reply)
    body: list[dict[str, Any]] = [
        _text(title, domains, size="large", weight="bolder", style="heading")
    ]
    text = reply.text.strip()
    prefix = title + ": "
    if text.startswith(prefix):
        # The title already says what this is: the text leads with the figure, in bold.
        first, _, rest = text[len(prefix) :].partition("\n")
        body.append(_text(first, domains, weight="bolder", spacing="small"))
        text = rest.strip()
    if text:
        body.append(_text(text, domains, color="attention" if reply.is_error else "default"))
    if reply.table is not None and reply.table.rows:
        body += table_elements(reply.table, domains)
    if reply.context:
        pairs = context_facts(reply.context)
        body.append(
            {**_facts(pairs, domains), "separator": True}
            if pairs
            else _text(reply.context, domains, isSubtle=True, size="small", separator=True)
        )
    image = chart_image(chart, title) if chart is not None else None
    if image is not None and len(json.dumps(body)) + len(image["url"]) < CARD_BUDGET:
        body.append(image)
    if note:
        body.append(_text(note, domains, isSubtle=True, size="small"))
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": safe_text(_clip(reply.text, MAX_TEXT), domains, markup=False),
        "body": body,
    }
    if not buttons:
        return card
    action = pending_action(reply)
    alert = reply.data.get("anomaly_alert")
    if action is not None:
        card["actions"] = approval_actions(int(action["id"]))
        body += keep_submits(action)
    elif isinstance(alert, dict) and alert.get("status") == OPEN:
        card["actions"] = feedback_actions(int(alert["id"]))
    return card


def attachment(card: dict[str, Any]) -> dict[str, Any]:
    """The card as a Bot Framework attachment."""
    return {"contentType": CONTENT_TYPE, "content": card}
