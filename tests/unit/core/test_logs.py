"""The JSON logs are safe to ship: one object a line, the event's ids on each, no secrets."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from core.logs import configure_logging, log_context, mask_mobile, settings_secrets
from tests.helpers import ACCESS_TOKEN, CHANNEL_ID, CHANNEL_SECRET, make_settings

PASSWORD = "Pässwörd\"with\\odd-chars"
OAUTH_SECRET = "oauth-secret-0123456789"
USER_ID = "U4af4980629ff2f6e0a8d4e1f7f2a4b1c"
EVENT_ID = "01FZ74A0TDDPYRVKNK77XKC3ZR"


@pytest.fixture
def output():
    """Route logging into a buffer through configure_logging, then put the handlers back."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    secrets = settings_secrets(make_settings(CAPILLARY_PASSWORD=PASSWORD))
    secrets += settings_secrets(make_settings(CAPILLARY_OAUTH_KEY="key",
                                              CAPILLARY_OAUTH_SECRET=OAUTH_SECRET))
    configure_logging(secrets=secrets, stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict]:
    raw = stream.getvalue().splitlines()
    assert raw, "nothing was logged"
    return [json.loads(line) for line in raw]


log = logging.getLogger("linecap.test")


def test_settings_secrets_lists_every_secret():
    basic = settings_secrets(make_settings(CAPILLARY_PASSWORD=PASSWORD))
    oauth = settings_secrets(make_settings(CAPILLARY_OAUTH_KEY="key",
                                           CAPILLARY_OAUTH_SECRET=OAUTH_SECRET))
    assert {CHANNEL_SECRET, ACCESS_TOKEN, PASSWORD} <= set(basic)
    assert OAUTH_SECRET in oauth


def test_every_line_is_one_json_object(output):
    log.info("first line\nsecond line of the same message")
    log.info("a large Capillary id", extra={"customer_id": 386577393,
                                            "timestamp_ms": 1_700_000_000_000})
    try:
        raise ValueError("boom\nwith a newline")
    except ValueError:
        log.exception("it failed")
    raw = output.getvalue().splitlines()
    assert len(raw) == 3
    records = [json.loads(line) for line in raw]
    assert all(isinstance(record, dict) for record in records)
    assert records[0]["msg"] == "first line\nsecond line of the same message"
    assert records[1]["customer_id"] == 386577393
    assert records[1]["timestamp_ms"] == 1_700_000_000_000
    assert "ValueError: boom" in records[2]["exc"] and records[2]["level"] == "error"


def test_context_fields_are_on_every_line_inside_the_block_only(output):
    with log_context(webhook_event_id=EVENT_ID, channel=CHANNEL_ID, task_id=EVENT_ID):
        log.info("started")
        with log_context(user_id=USER_ID):
            log.warning("nested")
        log.info("finished")
    log.info("outside")
    inside, nested, finished, outside = lines(output)
    for record in (inside, nested, finished):
        assert record["webhook_event_id"] == EVENT_ID
        assert record["channel"] == CHANNEL_ID
        assert record["task_id"] == EVENT_ID
    assert nested["user_id"] == USER_ID and "user_id" not in finished
    assert not {"webhook_event_id", "channel", "task_id"} & set(outside)


def test_context_does_not_leak_into_another_thread(output):
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        started.wait(5)
        log.info("from another thread")
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with log_context(webhook_event_id=EVENT_ID):
        started.set()
        release.wait(5)
    thread.join(5)
    (record,) = lines(output)
    assert record["msg"] == "from another thread" and "webhook_event_id" not in record


@pytest.mark.parametrize("secret", [CHANNEL_SECRET, ACCESS_TOKEN, PASSWORD, OAUTH_SECRET])
def test_configured_secrets_never_appear(output, secret):
    log.info("signing with %s", secret, extra={"detail": f"value={secret}",
                                                "nested": {"note": [secret]}})
    with log_context(webhook_event_id=EVENT_ID, leaked=secret):
        try:
            raise RuntimeError(f"auth failed for {secret}")
        except RuntimeError:
            log.exception("call failed")
    text = output.getvalue()
    assert secret not in text
    assert json.dumps(secret)[1:-1] not in text  # not even in its JSON-escaped form
    records = lines(output)
    assert all(secret not in json.dumps(record, ensure_ascii=False) for record in records)
    assert "[redacted]" in records[0]["msg"] and "[redacted]" in records[1]["exc"]


def test_keys_named_like_secrets_are_redacted(output):
    log.info("outbound call", extra={
        "access_token": "abc-unlisted-token", "client_secret": "unlisted-secret",
        "password": "hunter2-unlisted", "Authorization": "Basic dXNlcjpwYXNz",
        "request": {"headers": {"X-Api-Token": "nested-unlisted"}, "path": "/v2/customers"},
    })
    (record,) = lines(output)
    for key in ("access_token", "client_secret", "password", "Authorization"):
        assert record[key] == "[redacted]"
    assert record["request"]["headers"]["X-Api-Token"] == "[redacted]"
    assert record["request"]["path"] == "/v2/customers"
    text = output.getvalue()
    for value in ("abc-unlisted-token", "unlisted-secret", "hunter2-unlisted", "dXNlcjpwYXNz",
                  "nested-unlisted"):
        assert value not in text


def test_mobile_numbers_are_masked():
    assert mask_mobile("66812345678") == "*******5678"
    assert mask_mobile("call +66812345678 now") == "call ********5678 now"


def test_mobiles_are_masked_in_lines_but_ids_are_kept(output):
    with log_context(webhook_event_id=EVENT_ID, channel=CHANNEL_ID, task_id=EVENT_ID,
                     user_id=USER_ID):
        log.info("registering 66812345678 for %s", USER_ID,
                 extra={"mobile": "66812345678", "identifiers": [{"value": "0812345678"}]})
    (record,) = lines(output)
    assert record["msg"] == f"registering *******5678 for {USER_ID}"
    assert record["mobile"] == "*******5678"
    assert record["identifiers"] == [{"value": "******5678"}]
    assert record["user_id"] == USER_ID
    assert record["webhook_event_id"] == EVENT_ID and record["task_id"] == EVENT_ID
    assert record["channel"] == CHANNEL_ID
    assert "66812345678" not in output.getvalue()
