"""How the CLI talks to a person: one-line errors, aligned tables, JSON, masked secrets."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO
from urllib.parse import urlparse

PREREQUISITE = 2  # exit code: configuration or something the command needs is missing
NOT_OK = 1  # exit code: the command ran, and what it checked or did is not all right


class CliError(Exception):
    """A problem to report as `linecap: <message>` with no traceback."""

    def __init__(self, message: str, exit_code: int = PREREQUISITE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def error_line(message: str, stream: TextIO | None = None) -> None:
    print(f"linecap: {message}", file=stream or sys.stderr)


def mask_secret(value: str) -> str:
    """First 4 characters and an ellipsis; a value too short to hide that way shows nothing."""
    return value[:4] + "…" if len(value) > 8 else "…"


def display_url(url: str) -> str:
    """A URL safe to print: any password in it replaced by ***."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return parsed._replace(netloc=f"{parsed.username or ''}:***@{host}{port}").geturl()


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                stream: TextIO | None = None) -> None:
    """Columns padded to their widest cell; the last column is left ragged."""
    out = stream or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        print("  ".join(padded).rstrip(), file=out)


def print_fields(fields: Sequence[tuple[str, Any]], stream: TextIO | None = None) -> None:
    """`label   value` lines with the values aligned."""
    out = stream or sys.stdout
    width = max((len(label) for label, _ in fields), default=0)
    for label, value in fields:
        print(f"{label.ljust(width)}  {'-' if value is None else value}", file=out)


def print_json(value: Any, stream: TextIO | None = None) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    print(text, file=stream or sys.stdout)
