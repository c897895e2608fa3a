"""Hostile requests through gunicorn, as they arrive from the network: a chunked body over the
limit is 413 (never verified over its first MiB), a deeply nested signed body is 400."""

from __future__ import annotations

import json

import requests

from core.line.signature import sign
from tests.helpers import CHANNEL_ID, CHANNEL_SECRET, follow_event, new_user_id

LIMIT = 1024 * 1024


def chunks(body: bytes, size: int = 64 * 1024):
    for start in range(0, len(body), size):
        yield body[start:start + size]


def signed_over_the_first_mib() -> tuple[bytes, str]:
    head = json.dumps({"events": [follow_event(new_user_id())], "pad": ""}).encode()
    first = head[:-2] + b" " * (LIMIT - len(head)) + b'"}'
    return first, sign(first, CHANNEL_SECRET)


def test_a_chunked_body_over_the_limit_is_413(stack):
    first, signature = signed_over_the_first_mib()
    url = f"{stack.web_url}/webhooks/line/{CHANNEL_ID}"
    headers = {"x-line-signature": signature, "Content-Type": "application/json"}
    over = requests.post(url, data=chunks(first + b"and more after it"), headers=headers,
                         timeout=30)
    assert over.status_code == 413
    exact = requests.post(url, data=chunks(first), headers=headers, timeout=30)
    assert exact.status_code == 200  # chunked, exactly the limit: accepted


def test_a_deeply_nested_signed_body_is_400(stack):
    body = b'{"events": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}"
    response = requests.post(f"{stack.web_url}/webhooks/line/{CHANNEL_ID}", data=body,
                             headers={"x-line-signature": sign(body, CHANNEL_SECRET)}, timeout=10)
    assert response.status_code == 400 and "nested" in response.json()["message"]
