"""Reading a spend question typed in chat ("ec2 by region last month") into spend arguments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from skills.errors import UserError
from skills.periods import PeriodError, parse_period, take_period
from skills.spend_args import SpendArgs, resolve_dimension

if TYPE_CHECKING:
    from skills.registry import SkillContext

METRIC_PATTERNS = (
    (
        "billed",
        re.compile(
            r"\b(billed|invoiced?|invoices|on (?:the|our) bill|bill(?! ?ing account))\b", re.I
        ),
    ),
    ("list", re.compile(r"\b(list (?:price|cost)s?|list|on[- ]demand price)\b", re.I)),
    ("contracted", re.compile(r"\bcontract(?:ed)?\b", re.I)),
)
COMPARE = re.compile(
    r"\b(compare[sd]?|comparison|vs\.?|versus|change[sd]?|previous|growth|grew|grow|increase[sd]?|decrease[sd]?|than (?:last|the))\b",
    re.I,
)
PER_DAY = re.compile(
    r"\b(averaged?|avg|mean)\b|\bper day on average\b|\bdaily average\b|\ba day\b", re.I
)
# The "per day" of an average, which must not also become a daily breakdown.
AVERAGE_DAY = re.compile(r"\b(?:per|a)\s+day\b|\bdaily\s+average\b", re.I)
FUTURE = re.compile(r"\bnext\s+(?:week|month|quarter|year)\b|\b(?:in|for|during)\s+(\d{4})\b", re.I)
GPU = re.compile(r"\bgpus?\b", re.I)
TOP = re.compile(
    r"\b(?:top|biggest|largest|most expensive)\s+(\d{1,3})\b"
    r"|\b(\d{1,3})\s+(?:top|biggest|largest|most expensive)\b",
    re.I,
)
TOP_WORDLESS = re.compile(r"\b(top|biggest|largest|most expensive|the most|most)\b", re.I)
GROUP = re.compile(
    r"\b(?:(?:broken\s+down|split|grouped|group|break\s*down)\s+by|by|per|for\s+each|each|which|what|across"
    r"|(?:top|biggest|largest|most\s+expensive)(?:\s+\d{1,3})?|and|then)\s+"
    r"((?:[a-z][\w-]*)(?:\s+[a-z][\w-]*)?)",
    re.I,
)
TIME_WORDS = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "day by day": "day",
    "each day": "day",
}
WHO = re.compile(r"\bwho\b|\bwhich teams?\b", re.I)
EXCLUDE = re.compile(r"\b(?:excluding|except|without|not counting|minus)\b", re.I)
KEY_VALUE = re.compile(r"\b([a-z][\w-]*)\s*[=:]\s*([\w.\-/]+)", re.I)
RESOURCE_ID = re.compile(r"\b(i-[0-9a-f]{8,17}|arn:[\w\-:/.]+)", re.I)
# One space only: a value already recognised is blanked out, leaving a run of spaces.
UNKNOWN_TARGET = re.compile(r"\b(?:on|for)\s(?:the\s)?([a-z][\w.\-]*)", re.I)
# Words after "on"/"for"/"in" that name no value, so they are no reason to refuse a question.
VAGUE_TARGETS = frozenset(
    [
        "a",
        "all",
        "an",
        "any",
        "average",
        "ai",
        "both",
        "cloud",
        "clouds",
        "each",
        "every",
        "everything",
        "gpu",
        "gpus",
        "it",
        "me",
        "my",
        "our",
        "spend",
        "spending",
        "that",
        "the",
        "them",
        "this",
        "total",
        "us",
        "we",
        "what",
        "which",
        "whole",
    ]
)
# Words that follow "by"/"per"/"which" without naming a dimension.
NOT_DIMENSIONS = frozenset(["a", "an", "the", "far", "much", "how", "now", "average"])
# "and"/"then" continue a breakdown ("by provider and team") but may also join filter values.
CONTINUATIONS = ("and", "then")


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _group_by(text: str, context: SkillContext) -> tuple[list[str], str]:
    groups: list[str] = []
    for phrase, unit in TIME_WORDS.items():
        for match in re.finditer(rf"\b{phrase}\b", text, re.I):
            groups.append(unit)
            text = _blank(text, match.start(), match.end())
    last_end: int | None = None
    while match := _next_group(text, context, last_end):
        dimension, start, last_end = match
        groups.append(dimension)
        text = _blank(text, start, last_end)
    if WHO.search(text) and "team" in context.vocabulary.tag_keys():
        groups.append("tag:team")
    return list(dict.fromkeys(groups)), text


def _next_group(
    text: str, context: SkillContext, last_end: int | None
) -> tuple[str, int, int] | None:
    """The next breakdown named in `text`: its dimension and the span to blank out.

    An unknown word after "by" or "per" is an error unless it names a value ("billed by AWS");
    after "and" it counts only right after another breakdown.
    """
    for match in GROUP.finditer(text):
        lead = match.group(0).split()[0].lower()
        follows_group = last_end is not None and not text[last_end : match.start()].strip(" ,")
        if lead in CONTINUATIONS and not follows_group:
            continue
        words = match.group(1).split()
        for size in (2, 1):
            candidate = " ".join(words[:size])
            if len(words) < size or candidate.lower() in NOT_DIMENSIONS:
                continue
            try:
                dimension = resolve_dimension(candidate, context)
            except UserError:
                if (
                    size == 1
                    and lead in ("by", "per")
                    and not context.vocabulary.find_mentions(candidate)
                ):
                    raise
                continue
            return dimension, match.start(), match.start(1) + len(candidate)
    return None


def parse_spend_text(text: str, context: SkillContext) -> SpendArgs:
    """Spend arguments for a chat message; raises UserError for words it cannot place."""
    values: dict = {}
    phrase, text = take_period(text, context.now.date())
    if phrase:
        values["period"] = phrase
    elif future := FUTURE.search(text):
        # A future period is refused rather than silently answered for the default period.
        today = context.now.date()
        if future.group(1):
            parse_period(future.group(1), today)
        raise PeriodError(
            f"{future.group(0)} is in the future.",
            f"today is {today.isoformat()} (UTC); ask about a period that has started",
        )
    for metric, pattern in METRIC_PATTERNS:
        if pattern.search(text):
            values["metric"] = metric
            break
    values["compare"] = bool(COMPARE.search(text))
    values["per_day"] = bool(PER_DAY.search(text))
    if values["per_day"]:
        text = AVERAGE_DAY.sub(lambda match: " " * len(match.group(0)), text)
    values["gpu_only"] = bool(GPU.search(text))
    top = TOP.search(text)
    if top:
        values["top"] = int(top.group(1) or top.group(2))
    elif TOP_WORDLESS.search(text):
        values["top"] = 5
    group_by, text = _group_by(text, context)
    values["group_by"] = group_by
    filters, exclude, text = _filters(text, context)
    values["filters"], values["exclude"] = filters, exclude
    for unknown in UNKNOWN_TARGET.finditer(text):
        word = unknown.group(1).lower()
        if word not in VAGUE_TARGETS and word not in context.vocabulary.tag_keys():
            raise UserError(
                f"I don't know '{unknown.group(1)}' in the billing data",
                "name a provider, service, account, region or tag value that the data holds",
            )
    return SpendArgs(**values)


def _filters(
    text: str, context: SkillContext
) -> tuple[dict[str, list[str]], dict[str, list[str]], str]:
    filters: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    cut = EXCLUDE.search(text)
    boundary = cut.start() if cut else len(text)

    def add(dimension: str, value: str, position: int) -> None:
        target = exclude if position >= boundary else filters
        name = dimension.removeprefix("tag:")
        if value not in target.setdefault(name, []):
            target[name].append(value)

    for match in KEY_VALUE.finditer(text):
        add(match.group(1).lower(), match.group(2), match.start())
        text = _blank(text, match.start(), match.end())
    for match in RESOURCE_ID.finditer(text):
        add("resource", match.group(1), match.start())
        text = _blank(text, match.start(), match.end())
    for mention in context.vocabulary.find_mentions(text):
        add(mention.dimension, mention.value, mention.start)
        text = _blank(text, mention.start, mention.end)
    return filters, exclude, text
