"""Reading request bodies from outside: whole or refused, and JSON within limits.

A body longer than the limit is a 413 however it arrives. werkzeug's stream for a chunked
request (no Content-Length) stops at the limit without saying there was more, so the body is
read to one byte past the limit here: a cut body is never verified or parsed.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

_CHUNK = 64 * 1024


class BadJson(ValueError):
    """The body is not JSON linecap accepts; the message says why, for a 400."""


def read_body(limit: int) -> bytes:
    """The whole request body, or RequestEntityTooLarge (413) when it is over `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    stream, parts, size = request.stream, [], 0
    while size <= limit:
        part = stream.read(min(_CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise RequestEntityTooLarge()
    return b"".join(parts)


def parse_json(body: bytes, max_depth: int) -> Any:
    """RFC 8259 JSON (no NaN or Infinity) nested at most `max_depth` deep, or BadJson."""
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadJson(f"the JSON is nested deeper than {max_depth} levels") from None
    except BadJson:
        raise
    except (ValueError, UnicodeDecodeError):
        raise BadJson("the body is not JSON") from None
    # Counting brackets is cheap; only a body with more of them than the limit is walked.
    if body.count(b"[") + body.count(b"{") > max_depth and _depth(document) > max_depth:
        raise BadJson(f"the JSON is nested deeper than {max_depth} levels")
    return document


def _refuse_constant(name: str) -> None:
    raise BadJson(f"{name} is not a JSON value")


def _depth(document: Any) -> int:
    """How deep arrays and objects nest, without recursion (the input may be hostile)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return deepest
