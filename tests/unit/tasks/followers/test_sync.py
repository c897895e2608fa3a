"""The synthetic follows of the back-fill and the reconciliation: ids that dedup, stamps from
the time LINE's list was read."""

from __future__ import annotations

from tasks.followers.sync import backfill_event, reconcile_event
from tests.helpers import CHANNEL_ID, new_user_id


def test_backfill_event_is_a_follow_with_an_id_fixed_per_user_and_day():
    user = new_user_id()
    noon = 1_767_268_800_000  # 2026-01-01T12:00:00Z
    event = backfill_event(CHANNEL_ID, user, noon)
    assert event["webhookEventId"] == f"backfill-{CHANNEL_ID}-{user}-20260101"
    assert backfill_event(CHANNEL_ID, user, noon + 3600_000)["webhookEventId"] == \
        event["webhookEventId"]
    assert backfill_event(CHANNEL_ID, user, noon + 86400_000)["webhookEventId"] != \
        event["webhookEventId"]
    assert (event["type"], event["timestamp"], event["source"]["userId"]) == \
        ("follow", noon, user)
    assert "replyToken" not in event


def test_reconcile_events_have_an_id_per_run_and_user_that_linecap_accepts():
    from core.line.events import event_problem

    user, at = new_user_id(), 1_767_268_800_000
    follow = reconcile_event("follow", "0123abcd", user, at)
    unfollow = reconcile_event("unfollow", "0123abcd", user, at)
    assert follow["webhookEventId"] == f"reconcile-0123abcd-{user}"
    assert unfollow["webhookEventId"] == f"reconcile-out-0123abcd-{user}"
    assert (follow["type"], unfollow["type"], follow["timestamp"]) == ("follow", "unfollow", at)
    assert event_problem(follow, at) is None and event_problem(unfollow, at) is None
