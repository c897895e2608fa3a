"""Structured JSON logs that an on-call person can grep: one object per line, with the event's
webhook id, channel and task id on every line of its life, secrets redacted, mobiles masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from config import Settings

_context: ContextVar[dict[str, Any]] = ContextVar("linecap_log_context", default={})  # noqa: B039

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MOBILE = re.compile(r"(?<![\w.])\+?\d{8,15}(?![\w.])")
_SECRET_KEYS = re.compile(r"secret|token|password|authorization|api_key", re.IGNORECASE)
_ID_KEYS = re.compile(r"(^|_)id$|^channel$", re.IGNORECASE)  # ids are digits, never mobiles


def mask_mobile(text: str) -> str:
    """66812345678 -> *******5678: enough to recognise, not enough to call."""
    return _MOBILE.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (this thread / task only)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_context.get())
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(self._clean(entry))

    def _clean(self, value: Any, key: str = "") -> Any:
        """Redact and mask each value before serialising, so JSON escaping cannot hide a
        secret and masking never touches the JSON syntax (numbers stay numbers)."""
        if _SECRET_KEYS.search(key):
            return "[redacted]"
        if isinstance(value, dict):
            return {str(k): self._clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [self._clean(v, key) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        text = str(value)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text if _ID_KEYS.search(key) else mask_mobile(text)


def configure_logging(level: str = "INFO", secrets: Iterable[str] = (),
                      stream=None) -> None:
    """Send every linecap (and library) log line through the JSON formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel("WARNING")
    logging.getLogger("urllib3").setLevel("WARNING")


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value in the settings, for the formatter to redact wherever it appears."""
    values = [settings.capillary_auth.password, settings.capillary_auth.oauth_secret,
              *settings.ops_api_keys, *settings.api_keys,
              *(pair.split(":", 1)[-1] for pair in settings.flower_basic_auth.split(",") if pair)]
    for channel in settings.channels:
        values += [*channel.channel_secrets, channel.access_token]
    return [v for v in values if v]
