import pytest

from core.capillary.client import Subscription, subscription_entries, subscription_status
from core.capillary.transport import parse_retry_after, raise_for_envelope
from core.errors import (
    AlreadyRegisteredError,
    ConfigurationError,
    CredentialsError,
    IdentityConflictError,
    InvalidInputError,
    MergedAwayError,
    NotFoundError,
    OrgRulesError,
    TransientError,
)


def envelope(*codes):
    return {"errors": [{"status": False, "code": c, "message": "m"} for c in codes]}


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, envelope(8015), NotFoundError),
    (200, envelope(8065), NotFoundError),  # a 200 can still carry errors
    (400, envelope(816), NotFoundError),
    (400, envelope(8069), MergedAwayError),  # resolve again, never a dead letter
    (400, envelope(8006), AlreadyRegisteredError),
    (400, envelope(1014), AlreadyRegisteredError),
    (400, envelope(8007), IdentityConflictError),
    (400, envelope(8008), IdentityConflictError),
    (400, envelope(8053), IdentityConflictError),
    (400, envelope(8066), IdentityConflictError),
    (400, envelope(8067), IdentityConflictError),
    (400, envelope(8011), ConfigurationError),
    (400, envelope(8012), ConfigurationError),
    (400, envelope(8013), ConfigurationError),
    (400, envelope(8045), ConfigurationError),
    (400, envelope(1101), ConfigurationError),
    (400, envelope(1109), ConfigurationError),
    (400, envelope(1045), OrgRulesError),
    (400, envelope(1046), OrgRulesError),
    (400, envelope(1006), OrgRulesError),
    (400, envelope(1007), OrgRulesError),
    (400, envelope(8064), OrgRulesError),
    (400, envelope(8020), OrgRulesError),
    (500, envelope(1045), OrgRulesError),  # the codes decide, not the status
    (400, envelope(1104), InvalidInputError),
    (400, None, InvalidInputError),
    (401, None, CredentialsError),
    (403, None, CredentialsError),
    (429, None, TransientError),
    (461, None, TransientError),  # search engine busy
    (521, None, TransientError),  # several actions on one customer at once
    (500, None, TransientError),
    (503, {"errors": [{"code": 503, "message": "Service Unavailable"}]}, TransientError),
])
def test_envelope_decides(status, body, error):
    with pytest.raises(error):
        raise_for_envelope("GET /x", status, body)


def test_403_is_not_always_bad_credentials():
    with pytest.raises(ConfigurationError, match="not enabled"):
        raise_for_envelope("GET /x", 403, {"errors": [
            {"code": 403, "message": "V2 is not enabled for the org."}]})
    with pytest.raises(InvalidInputError, match="orgUnitId"):
        raise_for_envelope("POST /x", 403, {"errors": [
            {"code": 403, "message": "Mandatory field is missing. Field orgUnitId is "
                                     "mandatory."}]})


def test_the_codes_behind_an_error_travel_with_it():
    with pytest.raises(OrgRulesError) as info:
        raise_for_envelope("POST /v2/customers", 400, envelope(1045, 1004))
    assert info.value.codes == (1045,)


def test_success_passes_quietly():
    raise_for_envelope("POST /v2/customers", 200, {"createdId": 1, "warnings": [{"code": 8050}]})
    raise_for_envelope("POST /v2/customers", 200, {"createdId": 1, "warnings": [{"code": 91007}]})
    raise_for_envelope("POST /v2/customers", 500, {"createdId": 1, "warnings": [{"code": 8050}]})
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
        {"channel": "line", "priority": "BULK", "type": "OPTIN", "accountId": "acc-1"},
    ]
    assert subscription_status(subs, wanted) == "OPTIN"
    assert subscription_status(subs[:2], wanted) is None
    assert subscription_status(None, wanted) is None


def test_the_lookups_nested_status_names_no_account():
    """embed=subscriptions gives subscriptionInfo.subscriptions of channel, priority, type
    (_customer.md § Fetch Customer Details): trusted only for the org's single LINE account."""
    wanted = Subscription("LINE", "BULK", "acc-1")
    document = {"id": 1, "subscriptionInfo": {"subscriptions": [
        {"channel": "SMS", "priority": "BULK", "type": "OPTOUT"},
        {"channel": "LINE", "priority": "BULK", "type": "OPTIN"}]}}
    entries = subscription_entries(document)
    assert subscription_status(entries, wanted, only_account=True) == "OPTIN"
    assert subscription_status(entries, wanted) is None, "another account's, perhaps"
    assert subscription_entries({"id": 1, "subscriptions": entries}) == [], \
        "a top-level list is not where the lookup puts it"
