"""Text that reaches Slack from the LLM or billing data: it cannot ping anyone or link anywhere.

Slack reads ``<...>`` as mentions (``<@U1>``, ``<!channel>``, ``<!subteam^S1>``) and links, and
with ``link_names`` also ``@here``-style words; it turns bare URLs and domains into links. So all
such text is escaped (``& < >``), ``@word`` gets an invisible word joiner after the ``@``, and a
URL or domain outside the allow-list is defanged (``hxxps://evil[.]example``) while allowed ones
stay links.
"""

from __future__ import annotations

import re
from collections.abc import Collection

WORD_JOINER = "\u2060"

_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>|\"'`]+", re.IGNORECASE)
# Bare domains Slack would autolink: common TLDs only, so "g5.xlarge" or "ml.p3.2xlarge" stay as
# they are.
_DOMAIN = re.compile(
    r"(?<![\w.-])((?:[a-z0-9-]+\.)+(?:com|net|org|io|ai|co|dev|app|xyz|info|biz|me|ly|gg|us|"
    r"uk|de|fr|ru|cn|top|site|online|link|click|sh|to|tk|ml|cloud|tech|page|live|news|edu|gov))"
    r"\b(?![.-]?\w)",
    re.IGNORECASE,
)
_AT = re.compile(r"@(?=[\w!])")
_ANGLE_MENTION = re.compile(r"<\s*[@!#][^>]*>")


def escape(text: str) -> str:
    """Slack's own escaping of the three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _host(url: str) -> str:
    rest = url.split("://", 1)[1]
    return re.split(r"[/?#:]", rest, maxsplit=1)[0].lower().rsplit("@", 1)[-1]


def domain_allowed(host: str, domains: Collection[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one."""
    host = host.lower().rstrip(".")
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


def _defang(url_or_domain: str) -> str:
    text = re.sub(r"^(h)(tt)(ps?)://", r"\1xx\3://", url_or_domain, flags=re.IGNORECASE)
    text = re.sub(r"^ftp://", "fxp://", text, flags=re.IGNORECASE)
    return text.replace(".", "[.]")


def _plain_part(text: str, domains: Collection[str], *, markup: bool) -> str:
    text = _ANGLE_MENTION.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)

    def domain(match: re.Match[str]) -> str:
        return (
            match.group(1) if domain_allowed(match.group(1), domains) else _defang(match.group(1))
        )

    text = _DOMAIN.sub(domain, text)
    text = _AT.sub("@" + WORD_JOINER, text)
    # plain_text shows "<" literally; the look-alike keeps a clipped "<!here" inert anywhere.
    return escape(text) if markup else text.replace("<", "‹").replace(">", "›")


def safe_text(text: str, domains: Collection[str] = (), *, markup: bool = True) -> str:
    """`text` made safe for a Slack message: no mentions, links only to allowed `domains`.

    `markup` (mrkdwn and fallback text) escapes ``& < >`` and writes allowed links as
    ``<url>``; without it (``plain_text`` objects, where Slack parses no markup) only mentions
    and links are neutralised.
    """
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        parts.append(_plain_part(text[last : match.start()], domains, markup=markup))
        url = match.group(0).rstrip(".,;:!?)")
        tail = match.group(0)[len(url) :]
        if domain_allowed(_host(url), domains):
            parts.append(f"<{escape(url)}>" if markup else url)
        else:
            defanged = _defang(url)
            parts.append(escape(defanged) if markup else defanged)
        parts.append(_plain_part(tail, domains, markup=markup))
        last = match.end()
    parts.append(_plain_part(text[last:], domains, markup=markup))
    return "".join(parts)
