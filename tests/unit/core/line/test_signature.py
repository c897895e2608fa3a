import base64
import hashlib
import hmac

from core.line.signature import is_valid, sign


def test_matches_lines_definition():
    body = b'{"events":[],"destination":"U\\u00e9"}'
    expected = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()
    assert sign(body, "secret") == expected
    assert is_valid(body, expected, "secret")


def test_rejects_wrong_secret_missing_and_altered_body():
    body = b'{"events":[]}'
    good = sign(body, "secret")
    assert not is_valid(body, good, "other")
    assert not is_valid(body, None, "secret")
    assert not is_valid(body, "", "secret")
    assert not is_valid(body + b" ", good, "secret")


def test_reserialised_json_does_not_verify():
    """LINE escapes some characters; a body decoded and re-encoded is a different body."""
    raw = b'{"events":[{"text":"\\ud83d\\ude00"}]}'
    import json

    reencoded = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert not is_valid(reencoded, sign(raw, "secret"), "secret")
