"""The answer to "why is this user (not) opted in?", from the entry that decided it."""

from __future__ import annotations

import pytest

from core.history_view import UserHistory, describe, when
from core.store import history
from core.store.state import UserRecord
from tests.helpers import CHANNEL_ID, new_user_id

T = 1_800_000_000_000


def view(*entries: dict, record: UserRecord | None = None, parked=None) -> UserHistory:
    return UserHistory(CHANNEL_ID, new_user_id(), record, parked, list(entries), 30 * 86400, 200)


def outcome(at: int, event: str, kind: str, ended: str, reason: str | None = None) -> dict:
    return history.entry(history.OUTCOME, at, event=event, type=kind, outcome=ended, attempt=1,
                         reason=reason)


def test_an_applied_unfollow_is_why_the_user_is_not_opted_in():
    explained = view(outcome(T, "E1", "follow", "applied"),
                     outcome(T + 1, "E2", "unfollow", "applied", "set to OPTOUT"),
                     outcome(T + 2, "E2", "unfollow", "duplicate")).explanation()
    assert explained == f"not opted in because: unfollow E2 applied at {when(T + 1)} " \
                        "(set to OPTOUT)"


def test_a_stale_event_after_it_changes_nothing():
    explained = view(outcome(T, "E2", "follow", "applied"),
                     outcome(T + 5, "E1", "unfollow", "stale")).explanation()
    assert explained.startswith("opted in by: follow E2 applied at")


@pytest.mark.parametrize(("ended", "expected"), [
    ("dead_lettered", "not applied: follow E1 dead-lettered at {t} (invalid_input: HTTP 400); "
                      "`linecap dlq show E1`, then replay it"),
    ("parked", "not applied: follow E1 parked at {t} (invalid_input: HTTP 400)"),
    ("retried", "not applied yet: follow E1 retried at {t} (attempt 1) (invalid_input: HTTP 400)"),
])
def test_an_event_that_did_not_apply_says_how_it_ended(ended, expected):
    explained = view(outcome(T, "E1", "follow", ended, "invalid_input: HTTP 400")).explanation()
    assert explained == expected.format(t=when(T))


def test_a_queued_event_not_yet_applied_is_waiting():
    explained = view(history.entry(history.QUEUED, T, event="reconcile-r-U", type="follow",
                                   by="reconciliation r")).explanation()
    assert explained == f"follow reconcile-r-U queued at {when(T)} and not applied yet " \
                        "(waiting in its queue)"


def test_drift_is_named():
    explained = view(outcome(T, "E1", "follow", "applied"),
                     history.entry(history.DRIFT, T + 9, run="r1")).explanation()
    assert "LINE's follower list left them out" in explained and "r1" in explained


def test_without_history_the_order_record_or_a_parked_follow_answers():
    record = UserRecord(T, "E9", "unfollowed")
    assert view(record=record).explanation() == (
        "nothing in the last 30 days of history; linecap's latest applied event for this "
        f"user: unfollowed (E9, LINE timestamp {when(T)})")
    assert view(parked={"type": "follow"}).explanation() == \
        "a follow is parked until a mobile number is known"
    assert view().explanation().startswith("no event from this user reached linecap in the "
                                           "last 30 days")


def test_each_kind_reads_as_a_sentence():
    assert describe(history.entry(history.REPLAYED, T, event="E1", by="ops API (1.2.3.4)",
                                  reason="dead letter (invalid_input, 1 attempts)")) == \
        "replayed by ops API (1.2.3.4): dead letter (invalid_input, 1 attempts)"
    assert describe(outcome(T, "E1", "follow", "applied", "set to OPTIN") | {"customer": 7}) \
        == "applied (attempt 1): set to OPTIN [customer 7]"
