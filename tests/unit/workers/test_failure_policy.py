import random

from workers.failure_policy import Attempts, backoff_seconds, horizon_passed


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    delays = [backoff_seconds(n, max_delay=600, rng=rng) for n in range(1, 15)]
    assert delays[0] <= 2
    assert max(delays) <= 600
    assert delays[9] > delays[1]


def test_backoff_jitters():
    rng = random.Random(2)
    assert len({round(backoff_seconds(5, 600, rng=rng), 3) for _ in range(10)}) > 5


def test_backoff_honours_retry_after():
    assert backoff_seconds(1, 600, retry_after=30, rng=random.Random(0)) >= 30


def test_attempts_round_trip_and_horizon():
    a = Attempts().failed(now=1000.0).failed(now=1100.0)
    assert a.failures == 2 and a.first_failure_at == 1000.0
    assert Attempts.from_kwargs(a.to_kwargs()) == a
    assert not horizon_passed(a, 3600, now=4000.0)
    assert horizon_passed(a, 3600, now=4600.0)
    assert not horizon_passed(Attempts(), 1, now=1e12)
