"""Process logging: JSON or text lines, a request id on every record, secrets masked.

`configure_logging` installs one handler on the root logger. Its filters run for every record
that reaches it, from any logger: one attaches the id of the HTTP request being handled (set by
`bot.request_ids`, carried into worker threads by `bot.blocking`), one masks the values of
the configured secrets and anything shaped like a Slack or API token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.settings import Settings

LogFormat = Literal["json", "text"]
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MASK = "***"
# Slack bot/user/app tokens and sk-... API keys (OpenAI, Anthropic), whatever their source.
TOKEN_PATTERN = re.compile(r"\b(xox[a-z]-|xapp-|sk-)[A-Za-z0-9_-]{6,}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret: SecretStr settings, each item of a listed one, the DB password."""
    values = [
        part.strip()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
        for part in (value.get_secret_value(), *value.get_secret_value().split(","))
    ]
    values.append(make_url(settings.database_url).password or "")
    # Longest first, so a secret containing another is masked whole.
    return sorted({value for value in values if len(value) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret value and token-shaped string masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return TOKEN_PATTERN.sub(lambda match: match.group(1) + MASK, text)


class RedactionFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any formatter sees it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, masked; always let the record through."""
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class RequestIdFilter(logging.Filter):
    """Attaches the current request id ("-" outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set `record.request_id`; always let the record through."""
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    settings: Settings, log_format: LogFormat, stream: IO[str] | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one that masks, tags and formats every record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactionFilter(secret_values(settings)))
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler
