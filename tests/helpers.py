"""Small builders shared by the tests: settings, channels, signed webhook bodies."""

from __future__ import annotations

import json
import secrets
import uuid

from config import LineChannel, Settings, load_settings
from core.line.signature import sign
from sandboxes.line.events import make_follow_event, make_unfollow_event

CHANNEL_ID = "1650000001"
CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = "test-access-token"
SOURCE_ACCOUNT_ID = "line-account-1"
CHANNEL = LineChannel("main", CHANNEL_ID, CHANNEL_SECRET, ACCESS_TOKEN, SOURCE_ACCOUNT_ID)
# A channel of an account that is neither verified nor premium: LINE refuses its follower list
# (`verified` is the fake LINE platform's switch; linecap ignores the key).
UNVERIFIED_CHANNEL = {"name": "unverified", "channel_id": "1650000009",
                      "channel_secret": "9" * 32, "access_token": "unverified-access-token",
                      "source_account_id": "line-account-9", "verified": False}


def channels_json(*extra: dict) -> str:
    base = {"name": "main", "channel_id": CHANNEL_ID, "channel_secret": CHANNEL_SECRET,
            "access_token": ACCESS_TOKEN, "source_account_id": SOURCE_ACCOUNT_ID}
    return json.dumps([base, *extra])


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "CAPILLARY_BASE_URL": "http://127.0.0.1:9",
        "CAPILLARY_USERNAME": "sandbox-till",
        "CAPILLARY_PASSWORD": "sandbox-password",
        "LINE_CHANNELS": channels_json(),
        "LINE_API_BASE_URL": "http://127.0.0.1:9",
    }
    env.update(overrides)
    return env


def make_settings(**overrides: str) -> Settings:
    return load_settings(base_env(**overrides))


def new_user_id() -> str:
    return "U" + secrets.token_hex(16)


def new_event_id() -> str:
    return uuid.uuid4().hex.upper()[:26]


def follow_event(user_id: str, timestamp: int | None = None, event_id: str | None = None,
                 kind: str = "follow") -> dict:
    """A follow or unfollow shaped as LINE sends it (the fake LINE platform's own builders)."""
    if kind == "follow":
        return make_follow_event(user_id, timestamp_ms=timestamp, event_id=event_id)
    return make_unfollow_event(user_id, timestamp_ms=timestamp, event_id=event_id)


def signed_body(events: list[dict], secret: str = CHANNEL_SECRET) -> tuple[bytes, dict]:
    body = json.dumps({"destination": "U" + "0" * 32, "events": events}).encode()
    return body, {"x-line-signature": sign(body, secret), "Content-Type": "application/json"}


# What a WSGI server hands the app for a chunked request: no Content-Length, a stream that ends
# where the body ends. (Flask's test client computes a Content-Length from any input_stream;
# Transfer-Encoding: chunked makes werkzeug ignore it, as it must.)
CHUNKED = {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}
