"""The store's known values (providers, services, tag keys...) and how user words map onto them."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from skills.errors import UserError
from storage.costs import TAG_PREFIX, currencies, distinct_values, tag_values
from storage.models import ingest_slices

# Dimensions whose values people name in questions ("ec2", "us-east-1", "ml-prod").
MENTIONABLE = (
    "provider",
    "service",
    "service_category",
    "region",
    "sub_account",
    "billing_account",
    "instance_type",
    "sku",
)

# Common names for values, resolved against what the store really holds.
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aws": ("provider", ("AWS", "Amazon Web Services")),
    "amazon": ("provider", ("AWS", "Amazon Web Services")),
    "gcp": ("provider", ("Google Cloud", "Google Cloud Platform", "Google")),
    "google": ("provider", ("Google Cloud", "Google Cloud Platform", "Google")),
    "google cloud": ("provider", ("Google Cloud", "Google Cloud Platform")),
    "azure": ("provider", ("Microsoft", "Microsoft Azure", "Azure")),
    "microsoft": ("provider", ("Microsoft", "Microsoft Azure")),
    "oci": ("provider", ("Oracle", "Oracle Cloud Infrastructure")),
    "oracle": ("provider", ("Oracle", "Oracle Cloud Infrastructure")),
    "openai": ("provider", ("OpenAI",)),
    "anthropic": ("provider", ("Anthropic",)),
    "ec2": ("service", ("Amazon Elastic Compute Cloud",)),
    "s3": ("service", ("Amazon Simple Storage Service",)),
    "sagemaker": ("service", ("Amazon SageMaker",)),
    "bedrock": ("service", ("Amazon Bedrock",)),
    "rds": ("service", ("Amazon Relational Database Service",)),
    "eks": ("service", ("Amazon Elastic Kubernetes Service",)),
    "ecs": ("service", ("Amazon Elastic Container Service",)),
    "sqs": ("service", ("Amazon Simple Queue Service",)),
    "lambda": ("service", ("AWS Lambda",)),
    "cloudfront": ("service", ("Amazon CloudFront",)),
    "elb": ("service", ("Elastic Load Balancing",)),
    "data transfer": ("service", ("AWS Data Transfer",)),
    "gce": ("service", ("Compute Engine",)),
    "vertex": ("service", ("Vertex AI",)),
    "bigquery": ("service", ("BigQuery",)),
    "azure ml": ("service", ("Azure Machine Learning",)),
    "aml": ("service", ("Azure Machine Learning",)),
    "azure vms": ("service", ("Virtual Machines",)),
}

# Words that are never taken as a tag value even when some tag holds them.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "all",
        "any",
        "are",
        "by",
        "cost",
        "costs",
        "day",
        "for",
        "from",
        "in",
        "is",
        "it",
        "last",
        "me",
        "month",
        "my",
        "of",
        "on",
        "or",
        "our",
        "per",
        "show",
        "spend",
        "spent",
        "than",
        "that",
        "the",
        "this",
        "to",
        "top",
        "total",
        "us",
        "was",
        "we",
        "week",
        "what",
        "which",
        "with",
        "year",
    ]
)


@dataclass(frozen=True)
class Mention:
    """A known value named in a message: `dimension` is a dimension name or ``tag:<key>``."""

    dimension: str
    value: str
    start: int
    end: int


def _boundary_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.\-:/]){re.escape(phrase)}(?![\w\-:/]|\.\w)", re.IGNORECASE)


class Vocabulary:
    """Distinct values of the store, reloaded when an ingest changes it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._values: dict[str, list[str]] = {}
        self._tags: dict[str, list[str]] = {}
        self._currencies: list[str] = []
        self._phrases: list[tuple[str, str, str]] = []

    def _store_version(self) -> tuple:
        statement = select(
            func.count(), func.max(ingest_slices.c.loaded_at), func.sum(ingest_slices.c.row_count)
        )
        with self._engine.connect() as connection:
            return tuple(connection.execute(statement).one())

    def _refresh(self) -> None:
        with self._lock:
            version = self._store_version()
            if version == self._version:
                return
            self._values = {name: distinct_values(self._engine, name) for name in MENTIONABLE}
            self._tags = tag_values(self._engine)
            self._currencies = [currency for currency, _ in currencies(self._engine)]
            self._phrases = self._build_phrases()
            self._version = version

    def _build_phrases(self) -> list[tuple[str, str, str]]:
        phrases: dict[str, tuple[str, str]] = {}
        owners: dict[str, set[str]] = {}
        for key, values in self._tags.items():
            for value in values:
                owners.setdefault(value.lower(), set()).add(key)
        for value, keys in owners.items():
            if (
                len(keys) == 1
                and len(value) >= 2
                and value not in STOP_WORDS
                and not value.isdigit()
            ):
                (key,) = keys
                original = next(v for v in self._tags[key] if v.lower() == value)
                phrases[value] = (TAG_PREFIX + key, original)
        for dimension in reversed(MENTIONABLE):
            for value in self._values[dimension]:
                if len(value) >= 2 and value.lower() not in STOP_WORDS:
                    phrases[value.lower()] = (dimension, value)
        for alias, (dimension, _) in ALIASES.items():
            resolved = self._alias_target(alias)
            if resolved:
                phrases[alias] = (dimension, resolved)
        return sorted(
            ((phrase, *target) for phrase, target in phrases.items()),
            key=lambda item: -len(item[0]),
        )

    def _alias_target(self, alias: str) -> str | None:
        dimension, names = ALIASES[alias]
        known = {value.lower(): value for value in self._values.get(dimension, [])}
        return next((known[name.lower()] for name in names if name.lower() in known), None)

    def values(self, dimension: str) -> list[str]:
        """Known values of a column dimension."""
        self._refresh()
        return self._values.get(dimension, [])

    def choose_currency(self, requested: str | None) -> tuple[str, list[str]]:
        """The currency to report in (`requested`, else the most used) and the others left out."""
        self._refresh()
        used = self._currencies
        chosen = requested.upper() if requested else (used[0] if used else "USD")
        if requested and used and chosen not in used:
            raise UserError(f"No spend in {chosen}", f"billing currencies here: {', '.join(used)}")
        return chosen, [currency for currency in used if currency != chosen]

    def tag_keys(self) -> list[str]:
        """Known tag keys (lower-cased), most common first is not guaranteed: sorted by name."""
        self._refresh()
        return sorted(self._tags)

    def tag_values(self, key: str) -> list[str]:
        """Known values of tag `key`."""
        self._refresh()
        return self._tags.get(key.lower(), [])

    def resolve(self, dimension: str, text: str) -> str:
        """Map what a user typed to a stored value of `dimension`, or raise a UserError."""
        self._refresh()
        if dimension.startswith(TAG_PREFIX):
            known = self._tags.get(dimension.removeprefix(TAG_PREFIX), [])
            label = f"tag {dimension.removeprefix(TAG_PREFIX)}"
        else:
            known = self._values.get(dimension) or (
                distinct_values(self._engine, dimension) if dimension == "resource" else []
            )
            label = dimension.replace("_", " ")
        wanted = text.strip().lower()
        exact = [value for value in known if value.lower() == wanted]
        if exact:
            return exact[0]
        alias = ALIASES.get(wanted)
        if alias and alias[0] == dimension and (target := self._alias_target(wanted)):
            return target
        partial = [value for value in known if wanted and wanted in value.lower()]
        if len(partial) == 1:
            return partial[0]
        examples = ", ".join(sorted(partial or known)[:8])
        problem = "matches several values" if partial else "is not a known value"
        raise UserError(
            f"'{text}' {problem} of {label}",
            f"try one of: {examples}" if examples else "no data is loaded yet",
        )

    def find_mentions(self, text: str) -> list[Mention]:
        """Known values named in `text`, longest phrases first, never overlapping."""
        self._refresh()
        found: list[Mention] = []
        taken: list[tuple[int, int]] = []
        lowered = text.lower()
        for phrase, dimension, value in self._phrases:
            if phrase not in lowered:
                continue
            for match in _boundary_pattern(phrase).finditer(text):
                if all(match.end() <= start or match.start() >= end for start, end in taken):
                    found.append(Mention(dimension, value, match.start(), match.end()))
                    taken.append((match.start(), match.end()))
        return sorted(found, key=lambda mention: mention.start)
