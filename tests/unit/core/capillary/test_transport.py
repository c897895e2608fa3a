import pytest

from core.capillary.client import Subscription, subscription_status
from core.capillary.transport import parse_retry_after, raise_for_envelope
from core.errors import (
    AlreadyRegisteredError,
    ConfigurationError,
    CredentialsError,
    InvalidInputError,
    NotFoundError,
    TransientError,
)


def envelope(*codes):
    return {"errors": [{"status": False, "code": c, "message": "m"} for c in codes]}


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, envelope(8015), NotFoundError),
    (200, envelope(8065), NotFoundError),  # a 200 can still carry errors
    (400, envelope(816), NotFoundError),
    (400, envelope(1014), AlreadyRegisteredError),
    (200, envelope(91007), AlreadyRegisteredError),
    (400, envelope(8011), ConfigurationError),
    (400, envelope(8045), ConfigurationError),
    (400, envelope(1004), InvalidInputError),
    (400, None, InvalidInputError),
    (401, None, CredentialsError),
    (403, envelope(1), CredentialsError),
    (429, None, TransientError),
    (500, None, TransientError),
    (503, envelope(8015), TransientError),
])
def test_envelope_decides(status, body, error):
    with pytest.raises(error):
        raise_for_envelope("GET /x", status, body)


def test_success_passes_quietly():
    raise_for_envelope("POST /v2/customers", 200, {"createdId": 1, "warnings": [{"code": 8050}]})
    raise_for_envelope("GET /x", 200, {"errors": None})
    raise_for_envelope("GET /x", 200, {"errors": []})


def test_retry_after_is_carried():
    with pytest.raises(TransientError) as info:
        raise_for_envelope("POST /x", 429, None, retry_after=7.0)
    assert info.value.retry_after == 7.0


def test_parse_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_subscription_status_matches_channel_and_account():
    wanted = Subscription("LINE", "BULK", "acc-1")
    subs = [
        {"channel": "LINE", "priority": "BULK", "type": "OPTOUT", "accountId": "acc-2"},
        {"channel": "EMAIL", "priority": "BULK", "type": "OPTIN"},
        {"channel": "LINE", "priority": "BULK", "type": "OPTIN", "accountId": "acc-1"},
    ]
    assert subscription_status(subs, wanted) == "OPTIN"
    assert subscription_status(subs[:2], wanted) is None
    assert subscription_status(None, wanted) is None
