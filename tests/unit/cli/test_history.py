"""`linecap history`: a user's story as a table, or JSON; exit 1 when there is none."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from core.history_view import when
from core.store import history
from core.store.history import HistoryStore
from tests.helpers import CHANNEL_ID, new_user_id


def test_a_users_steps_in_order_with_why(redis, capsys):
    user, t0 = new_user_id(), history.now_ms() - 60_000
    HistoryStore(redis).record(CHANNEL_ID, user, [
        history.entry(history.RECEIVED, t0, event="E1", type="follow",
                      queue="line-events", timestamp=t0 - 5, redelivery=True),
        history.entry(history.CALL, t0 + 100, event="E1",
                      call="POST /v2/customers/{id}/subscriptions", status="503", ms=12),
        history.entry(history.OUTCOME, t0 + 200, event="E1", type="follow",
                      outcome="retried", attempt=1, reason="TransientError: HTTP 503",
                      again_in_s=1.5)])
    # written out of order by two processes: shown by time
    HistoryStore(redis).record(CHANNEL_ID, user, [history.entry(
        history.QUEUED, t0 - 1000, event="E1", type="follow", by="reconciliation r1")])
    assert main(["history", "--line-user", user]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("channel ") and out[1].split() == ["LINE", "user", user]
    assert out[3].startswith("why") and \
        out[3].endswith(f"not applied yet: follow E1 retried at {when(t0 + 200)} (attempt 1) "
                        "(TransientError: HTTP 503)")
    table = out[out.index("") + 1:]
    assert table[0].split() == ["TIME", "EVENT", "STEP"]
    assert [line.split("  ")[0] for line in table[1:]] == [
        when(t0 - 1000), when(t0), when(t0 + 100), when(t0 + 200)]
    assert table[1].endswith("queued by reconciliation r1")
    assert table[2].endswith(f"received from line-events (LINE timestamp {when(t0 - 5)}, "
                             "a redelivery by LINE)")
    assert table[3].endswith("Capillary POST /v2/customers/{id}/subscriptions -> 503 (12 ms)")
    assert table[4].endswith("retried (attempt 1): TransientError: HTTP 503; again in 1.5 s")


def test_json_and_nothing_known(redis, capsys):
    user = new_user_id()
    assert main(["history", "--line-user", user, "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["entries"] == [] and body["user_id"] == user
    assert body["explanation"].startswith("no event from this user reached linecap")


def test_a_malformed_user_is_a_usage_error(redis, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["history", "--line-user", "U123"])
    assert exited.value.code == 2
    assert "LINE user id must be U followed by 32" in capsys.readouterr().err
