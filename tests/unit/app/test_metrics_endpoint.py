"""The web's /metrics is behind a bearer key: off without one, 401 without the right one."""

from __future__ import annotations

import fakeredis
import pytest

from app import create_app
from tests.helpers import make_settings

KEY = "metrics-key-0123456789abcdef"


def client(**env: str):
    app = create_app(make_settings(**env), publisher=object(),
                     redis_client=fakeredis.FakeRedis(decode_responses=True), celery_app=object())
    return app.test_client()


def test_metrics_are_off_until_a_key_is_set():
    response = client().get("/metrics")
    assert response.status_code == 403
    assert "LINECAP_METRICS_KEYS" in response.get_json()["message"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key-0123456789abcd", KEY,
                                    f"Basic {KEY}"])
def test_metrics_refuse_a_missing_or_wrong_key(header):
    headers = {"Authorization": header} if header else {}
    response = client(LINECAP_METRICS_KEYS=KEY).get("/metrics", headers=headers)
    assert response.status_code == 401 and b"linecap_" not in response.data


def test_metrics_answer_with_one_of_the_keys():
    other = "second-metrics-key-0123456789"
    web = client(LINECAP_METRICS_KEYS=f"{KEY},{other}")
    for key in (KEY, other):
        response = web.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200 and b"linecap_redis_up" in response.data


def test_the_last_reconciliation_of_each_channel_is_a_gauge():
    from prometheus_client.parser import text_string_to_metric_families

    from core.store.reconciliation import ReconciliationStore, Run
    from tests.helpers import CHANNEL_ID

    redis = fakeredis.FakeRedis(decode_responses=True)
    run = Run.new(CHANNEL_ID, "schedule", False)
    run.counts = {"followers": 40, "never_applied": 3, "unfollowed_in_linecap": 2, "drift": 7}
    ReconciliationStore(redis, 3600).finish(run, run.summary("completed", now=1_800_000_000))
    app = create_app(make_settings(LINECAP_METRICS_KEYS=KEY), publisher=object(),
                     redis_client=redis, celery_app=object())
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    samples = {(s.name, s.labels.get("channel")): s.value
               for family in text_string_to_metric_families(response.get_data(as_text=True))
               for s in family.samples if s.name.startswith("linecap_reconcile")}
    assert samples == {
        ("linecap_reconcile_followers", CHANNEL_ID): 40,
        ("linecap_reconcile_queued_followers", CHANNEL_ID): 5,
        ("linecap_reconcile_drift_users", CHANNEL_ID): 7,
        ("linecap_reconcile_refused", CHANNEL_ID): 0,
        ("linecap_reconcile_last_run_timestamp_seconds", CHANNEL_ID): 1_800_000_000}
