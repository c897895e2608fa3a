"""Identifiers from outside: mobiles are ASCII digits, LINE ids are U + 32 lowercase hex; link
payloads are read back under the same rules, with an id that does not give the mobile away."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import InvalidInputError
from core.line.client import LineApiClient
from core.link_request import LinkRequest
from core.validation import is_mobile, mobile_problem
from tests.helpers import CHANNEL, new_user_id


@pytest.mark.parametrize("value", ["６６８１２３４５６７８", "٦٦٨١٢٣٤٥٦٧٨", "६६८१२३४५६७८",
                                   "66812345６78", "+６６８１２３４５６７８", "6681234567²"])
def test_non_ascii_digits_are_not_a_mobile(value):
    assert not is_mobile(value)
    assert "0-9" in mobile_problem(value)


@pytest.mark.parametrize("value", ["66812345678", "+66812345678", "12345678"])
def test_ascii_mobiles_are(value):
    assert is_mobile(value) and mobile_problem(value) is None


@pytest.mark.parametrize("mobile", ["６６８１２３４５６７８", "+66812345678", 66812345678, "1234"])
def test_a_link_payload_with_a_bad_mobile_is_refused(mobile):
    event = LinkRequest(new_user_id(), mobile="66812345678").to_event()
    event["link"]["mobile"] = mobile
    with pytest.raises(InvalidInputError):
        LinkRequest.from_event(event)


def test_link_ids_are_keyed_by_the_channel_secret():
    user = new_user_id()
    request = LinkRequest(user, mobile="66812345678")
    link_id = request.link_id(CHANNEL)
    assert link_id == LinkRequest(user, mobile="66812345678").link_id(CHANNEL)
    assert link_id.startswith("link-") and "66812345678" not in link_id
    assert link_id != LinkRequest(user, mobile="66812345679").link_id(CHANNEL)
    assert link_id != request.link_id(replace(CHANNEL, channel_secret="other-secret-000000"))


@pytest.mark.parametrize("user_id", ["../../v2/bot/info", "U" + "A" * 32, "U123"])
def test_the_line_client_puts_only_line_ids_in_its_urls(user_id):
    class NoNetwork:
        def request(self, *args, **kwargs):
            raise AssertionError("no request may be made")

    client = LineApiClient("http://127.0.0.1:9", session=NoNetwork())
    with pytest.raises(InvalidInputError):
        client.profile(CHANNEL, user_id)
    with pytest.raises(InvalidInputError):
        client.issue_link_token(CHANNEL, user_id)
