"""The shared budgets: one per API group when configured, a live reserve bulk work cannot
take, and waits that say when a slot frees up."""

from __future__ import annotations

import pytest

from core.errors import ComeBackLater
from core.store.rate_budget import BULK, LIVE, SHARED, SharedRateLimiter, current_lane, lane


@pytest.fixture
def limiter(fake_redis):
    return SharedRateLimiter(fake_redis, 10, key="t:shared", max_inline_wait=0,
                             live_reserve=0.2, group_limits={"add": 3, "lookup": 0})


def test_bulk_work_leaves_the_live_reserve(limiter):
    with lane(BULK):
        assert [limiter.try_acquire("subscriptions") for _ in range(8)] == [0.0] * 8
        assert limiter.try_acquire("subscriptions") > 0, "the last 2 of 10 are live's"
    assert [limiter.try_acquire("subscriptions", LIVE) for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire("subscriptions", LIVE) > 0
    assert limiter.stats().used == 10


def test_a_group_with_its_own_budget_does_not_touch_the_shared_one(limiter):
    assert limiter.budget("add")[0] == "add" and limiter.budget("lookup")[0] == SHARED
    for _ in range(3):
        limiter.acquire("add")
    with pytest.raises(ComeBackLater, match="budget add exhausted"):
        limiter.acquire("add")
    assert limiter.stats("add").used == 3 and limiter.stats().used == 0
    assert [name for name, _, _ in limiter.budgets()] == [SHARED, "add"]


def test_a_small_budget_still_lets_bulk_work_through(fake_redis):
    tiny = SharedRateLimiter(fake_redis, 1, key="t:tiny", max_inline_wait=0, live_reserve=0.5)
    assert tiny.cap(1, BULK) == 1 and tiny.cap(10, BULK) == 5 and tiny.cap(10, LIVE) == 10


def test_the_wait_is_until_enough_calls_leave_the_window(limiter):
    with lane(BULK):
        for _ in range(8):
            limiter.acquire("subscriptions")
        wait = limiter.try_acquire("subscriptions")
    assert 50 < wait <= 61


def test_the_lane_is_live_unless_a_block_says_otherwise():
    assert current_lane() == LIVE
    with lane(BULK):
        assert current_lane() == BULK
    assert current_lane() == LIVE


def test_a_reservation_is_used_by_the_calls_in_it_and_the_rest_given_back(limiter):
    with lane(BULK), limiter.reserve({"subscriptions": 5, "lookup": 1}):
        assert limiter.stats().used == 6, "the shared budget holds both groups' slots"
        for _ in range(4):
            limiter.acquire("subscriptions")
        assert limiter.stats().used == 6, "reserved calls take no second slot"
    assert limiter.stats().used == 4, "the two unused slots went back"


def test_a_reservation_without_room_takes_nothing(limiter):
    with lane(BULK):
        for _ in range(5):
            limiter.acquire("subscriptions")
        with pytest.raises(ComeBackLater, match="no room for 4 calls") as raised, \
                limiter.reserve({"lookup": 4}):
            pytest.fail("the block must not run")
    assert 50 < raised.value.wait_seconds <= 61
    assert limiter.stats().used == 5
    with lane(BULK), limiter.reserve({"lookup": 3}):
        assert limiter.stats().used == 8


def test_a_failed_second_budget_gives_the_first_back(limiter):
    limiter.acquire("add")
    with lane(BULK), pytest.raises(ComeBackLater, match="budget add"), \
            limiter.reserve({"lookup": 2, "add": 2}):
        pass
    assert limiter.stats().used == 0 and limiter.stats("add").used == 1


def test_a_need_beyond_the_lanes_cap_is_left_to_each_call(limiter):
    with lane(BULK), limiter.reserve({"lookup": 9}):
        assert limiter.stats().used == 0
        limiter.acquire("lookup")
    assert limiter.stats().used == 1
