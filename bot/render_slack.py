"""Block Kit rendering of platform-neutral replies: header, text, table, context, buttons.

Everything that comes from a skill, billing data or the LLM passes through `bot.safe_text`, so a
reply can neither ping people nor link outside the allow-listed domains. Blocks are built with
slack_sdk's models, which check Slack's limits as they serialize.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.render_gpu import keep_buttons
from bot.render_text import format_cell
from bot.reply_charts import chart_for
from bot.safe_text import safe_text
from skills.replies import Reply, Table

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50
TABLE_BLOCKS = 40
FALLBACK_LIMIT = 3000

SHARE = "spend_share"
APPROVE = "action_approve"
DENY = "action_deny"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(reply: Reply) -> str:
    """A short title for the reply: the first line up to its first colon, or clipped."""
    first = reply.text.strip().splitlines()[0] if reply.text.strip() else "spendbot"
    title = first.split(": ", 1)[0] if ": " in first[:HEADER_LIMIT] else first
    if reply.is_error and not title.startswith(("Sorry", "Refused")):
        title = "Couldn't answer that"
    return _clip(title.rstrip("."), HEADER_LIMIT)


def _table_lines(table: Table) -> tuple[str, list[str]]:
    """Heading plus one aligned line per row, money right-aligned (as in the terminal)."""
    cells = [[format_cell(table, i, value) for i, value in enumerate(row)] for row in table.rows]
    widths = [
        max(len(str(heading)), *(len(row[i]) for row in cells)) if cells else len(str(heading))
        for i, heading in enumerate(table.columns)
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.rjust(width) if i in table.money_columns else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return line([str(c) for c in table.columns]), [line(row) for row in cells]


def table_sections(table: Table, domains: Collection[str], limit_blocks: int) -> list[Block]:
    """The table as preformatted sections, split between blocks at row boundaries."""
    head, lines = _table_lines(table)
    head = safe_text(head, domains)
    blocks: list[Block] = []
    chunk: list[str] = []
    size = len(head) + 8

    def flush() -> None:
        body = "\n".join([head, *chunk]) if not blocks else "\n".join(chunk)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"```{body}```")))

    for index, raw in enumerate(lines):
        row = _clip(safe_text(raw, domains), SECTION_LIMIT - len(head) - 16)
        if chunk and size + len(row) + 1 > SECTION_LIMIT:
            flush()
            chunk, size = [], 8
            if len(blocks) == limit_blocks - 1:
                rest = len(lines) - index
                blocks.append(
                    ContextBlock(
                        elements=[MarkdownTextObject(text=f"… and {rest} more row(s) not shown.")]
                    )
                )
                return blocks
        chunk.append(row)
        size += len(row) + 1
    if chunk or not blocks:
        flush()
    return blocks


def _text_sections(text: str, domains: Collection[str]) -> list[Block]:
    safe = safe_text(text, domains)
    pieces = [safe[i : i + SECTION_LIMIT] for i in range(0, len(safe), SECTION_LIMIT)] or [" "]
    return [SectionBlock(text=MarkdownTextObject(text=piece)) for piece in pieces[:5]]


def pending_action(reply: Reply) -> dict[str, Any] | None:
    """The pending guarded action a reply asks people to decide on, if any."""
    action = reply.data.get("action")
    if (
        reply.data.get("needs_approval")
        and isinstance(action, dict)
        and action.get("state", "pending") == "pending"
        and "id" in action
    ):
        return action
    return None


def approval_buttons(action_id: int) -> ActionsBlock:
    """Approve and Deny, each carrying the action number; Approve asks for confirmation."""
    return ActionsBlock(
        block_id=f"action_{action_id}",
        elements=[
            ButtonElement(
                text="Approve",
                action_id=APPROVE,
                value=str(action_id),
                style="primary",
                confirm=ConfirmObject(
                    title="Approve this action?",
                    text=f"Action #{action_id} runs as soon as it has the approvals it needs.",
                    confirm="Approve",
                    deny="Cancel",
                ),
            ),
            ButtonElement(text="Deny", action_id=DENY, value=str(action_id), style="danger"),
        ],
    )


def share_button(command_text: str) -> ActionsBlock:
    """A button that posts the same answer in the channel for everyone."""
    return ActionsBlock(
        elements=[
            ButtonElement(
                text="Share in channel",
                action_id=SHARE,
                value=json.dumps({"text": _clip(command_text, 1900)}),
            )
        ]
    )


def reply_blocks(
    reply: Reply,
    *,
    domains: Collection[str] = (),
    share: str | None = None,
    note: str | None = None,
    buttons: bool = True,
) -> list[dict[str, Any]]:
    """Blocks for `reply`: header, text, table, context line, then buttons.

    `share` (the ``/spend`` text) adds a "Share in channel" button; `note` is a context line
    written by spendbot itself (it may mention the person who clicked); a pending action gets
    Approve/Deny buttons (and a GPU stop, keep buttons per machine) unless `buttons` is false.
    """
    title = safe_text(headline(reply), domains, markup=False)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(title, HEADER_LIMIT), emoji=True))
    ]
    body = reply.text.strip()
    prefix = headline(reply) + ": "
    if body.startswith(prefix):
        # The header already says what this is: the section leads with the figure, in bold.
        first, _, rest = body[len(prefix) :].partition("\n")
        body = f"*{first}*" + (f"\n{rest}" if rest else "")
    blocks += _text_sections(body, domains)
    tail: list[Block] = []
    if reply.context:
        tail.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text=_clip(safe_text(reply.context, domains), CONTEXT_LIMIT))
                ]
            )
        )
    if note:
        tail.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(note, CONTEXT_LIMIT))]))
    action = pending_action(reply)
    if action is not None and buttons:
        tail.append(approval_buttons(int(action["id"])))
        tail += keep_buttons(action)
    if share is not None:
        tail.append(share_button(share))
    if reply.table is not None and reply.table.rows:
        room = min(TABLE_BLOCKS, MAX_BLOCKS - len(blocks) - len(tail))
        blocks += table_sections(reply.table, domains, room)
    blocks += tail
    return [block.to_dict() for block in blocks]


def fallback_text(reply: Reply, domains: Collection[str] = ()) -> str:
    """The notification and screen-reader text that goes with the blocks."""
    return _clip(safe_text(reply.text, domains), FALLBACK_LIMIT)


def chart_upload(
    reply: Reply, domains: Collection[str], channel: str, thread: str | None
) -> dict[str, Any] | None:
    """``files_upload_v2`` arguments for the reply's chart in `thread`, or None without one."""
    title = safe_text(headline(reply), domains, markup=False)
    png = chart_for(reply, title)
    if png is None:
        return None
    return {
        "channel": channel,
        "thread_ts": thread,
        "file": png,
        "filename": "spendbot-chart.png",
        "title": title,
        "alt_txt": title,
    }
