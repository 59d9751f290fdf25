"""Regenerate the README's Slack examples from the demo data: an anomaly alert and the digest.

``python -m docs.render_examples`` loads 120 days of demo spend into a temporary store, runs one
anomaly scan and the weekly digest as the scheduler would (clock: 2026-11-29 12:00 UTC), and
writes what Slack shows: each message's Block Kit as text (``docs/slack-alert-example.txt``,
``docs/slack-digest-example.txt``) and the digest's chart (``docs/slack-digest-chart.png``).
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot import render_alerts, render_slack
from bot.jobs import SCHEDULER
from bot.pipeline import Assistant
from bot.reply_charts import chart_for
from bot.settings import Settings
from skills.anomaly_alerts import scan
from skills.catalog import load_skills
from skills.replies import Reply
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame

DOCS = Path(__file__).parent
NOW = datetime(2026, 11, 29, 12)


def block_text(block: dict[str, Any]) -> list[str]:
    """One Block Kit block as the lines a reader sees (bold headers, buttons in brackets)."""
    kind = block["type"]
    if kind == "header":
        return [f"*{block['text']['text']}*"]
    if kind == "section":
        lines = [block["text"]["text"]] if block.get("text") else []
        # A preformatted table shows as plain monospaced text, without its fences.
        lines = [line.replace("```", "") for line in lines]
        return lines + [field["text"] for field in block.get("fields", [])]
    if kind == "context":
        return [" · ".join(element.get("text", "") for element in block["elements"])]
    if kind == "actions":
        return [" ".join(f"[{element['text']['text']}]" for element in block["elements"])]
    return []


def as_seen(reply: Reply, domains: tuple[str, ...] = ()) -> str:
    """A posted message and its thread (the table), as text."""
    lines = [
        line
        for block in render_alerts.message(reply, domains)["blocks"]
        for line in block_text(block)
    ]
    if reply.table is not None and reply.table.rows:
        details = Reply(text="Details", table=reply.table)
        lines.append("")
        lines.append("  ↳ in the thread:")
        for block in render_slack.reply_blocks(details, domains=domains)[1:]:
            lines += [f"  {line}" for text in block_text(block) for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the alert and digest examples and the digest chart under docs/."""
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/demo.db")
        ingest_frame(engine, generate_demo_focus(date(2026, 11, 28), days=120), "demo data")
        assistant = Assistant(
            Settings(database_url=str(engine.url), now=NOW), engine, load_skills()
        )
        notices = scan(assistant.context(SCHEDULER))
        (DOCS / "slack-alert-example.txt").write_text(as_seen(notices[0].reply))
        skill = assistant.registry.get("digest_show")
        assert skill is not None
        digest = assistant.execute(skill, {}, SCHEDULER)
        (DOCS / "slack-digest-example.txt").write_text(as_seen(digest))
        png = chart_for(digest, render_slack.headline(digest))
        assert png is not None
        (DOCS / "slack-digest-chart.png").write_bytes(png)
        engine.dispose()


if __name__ == "__main__":
    main()
