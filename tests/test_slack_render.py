"""Block Kit rendering and the text guard, in-process: limits, escaping, mentions, links."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.render_slack import headline, reply_blocks
from bot.safe_text import WORD_JOINER, safe_text
from skills.replies import Reply, Table

PING = re.compile(r"<[@!#]|(?<!\w)@(channel|here|everyone)\b|@[A-Za-z0-9]")


def valid(blocks: list[dict]) -> list[dict]:
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        Block.parse(raw).validate_json()
    return blocks


@given(st.text(alphabet=st.sampled_from(list("<>@!#&|^ abcUHhereveryonechnl:/.x1")), max_size=80))
def test_no_text_can_ping(text: str) -> None:
    for markup in (True, False):
        assert not PING.search(safe_text(text, markup=markup))


def test_mentions_are_neutralised_and_links_limited() -> None:
    text = "@channel <!here> <@U1|bob> <!subteam^S1> see https://evil.test/x?y=1 or <https://evil.com|ok>"
    safe = safe_text(text, ["acme.io"])
    assert "@channel" not in safe and f"@{WORD_JOINER}channel" in safe
    assert "<" not in safe.replace("&lt;", "")
    assert "https://evil" not in safe and "hxxps://evil[.]test/x?y=1" in safe
    assert "evil.com" not in safe
    assert (
        safe_text("docs https://wiki.acme.io/p.", ["acme.io"]) == "docs <https://wiki.acme.io/p>."
    )
    assert safe_text("a & b < c", []) == "a &amp; b &lt; c"
    assert safe_text("p5.48xlarge g5.xlarge ml.p3.2xlarge $1,234.56") == (
        "p5.48xlarge g5.xlarge ml.p3.2xlarge $1,234.56"
    )


def test_a_long_table_is_split_into_valid_sections_with_a_note() -> None:
    rows = [[f"team-{i:04d}-" + "x" * 60, float(i)] for i in range(2000)]
    reply = Reply(
        text="Spend by team: $1.00", table=Table(["Team", "Amount"], rows, frozenset({1}))
    )
    blocks = valid(reply_blocks(reply, share="by team"))
    assert blocks[0]["type"] == "header" and blocks[-1]["type"] == "actions"
    assert "more row(s) not shown" in str(blocks)
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)


def test_header_is_clipped_and_errors_are_labelled() -> None:
    long = Reply(text="x" * 500)
    assert len(headline(long)) == 150
    valid(reply_blocks(long))
    error = Reply(text="'mars' is not a provider I know", is_error=True)
    assert headline(error) == "Couldn't answer that"
    assert headline(Reply(text="Spend for last month: $5.00.")) == "Spend for last month"
