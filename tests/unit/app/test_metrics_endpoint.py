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
