"""Scrape-time gauges of the reconciliation with LINE's follower list, read from each
channel's last run summary in Redis (one round trip). Registered on the web's /metrics beside
workers.queue_metrics; when Redis does not answer, that collector says so (linecap_redis_up)
and these are left out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.store.reconciliation import ReconciliationStore


class ReconciliationCollector(Collector):
    def __init__(self, client: redis.Redis, channel_ids: Iterable[str]) -> None:
        self._store = ReconciliationStore(client, 0)
        self._channels = list(channel_ids)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lasts = self._store.lasts(self._channels)
        except (redis.RedisError, ValueError):
            return
        families = {
            "followers": GaugeMetricFamily(
                "linecap_reconcile_followers",
                "Followers LINE listed in the channel's last reconciliation.", labels=["channel"]),
            "queued": GaugeMetricFamily(
                "linecap_reconcile_queued_followers",
                "Followers the last reconciliation found unapplied and queued a follow for.",
                labels=["channel"]),
            "drift": GaugeMetricFamily(
                "linecap_reconcile_drift_users",
                "Users linecap has as following whom LINE's follower list left out in the last "
                "reconciliation (reported, not unfollowed, unless repair is on).",
                labels=["channel"]),
            "refused": GaugeMetricFamily(
                "linecap_reconcile_refused",
                "1 when LINE refused the channel's follower list in the last reconciliation "
                "(not a verified or premium account, or a bad token).", labels=["channel"]),
            "finished": GaugeMetricFamily(
                "linecap_reconcile_last_run_timestamp_seconds",
                "When the channel's last reconciliation ended (Unix time).", labels=["channel"]),
        }
        for channel, last in zip(self._channels, lasts, strict=True):
            if not isinstance(last, dict):
                continue
            counts = last.get("counts") or {}
            families["followers"].add_metric([channel], counts.get("followers", 0))
            families["queued"].add_metric(
                [channel], counts.get("never_applied", 0) + counts.get("unfollowed_in_linecap", 0))
            families["drift"].add_metric([channel], counts.get("drift", 0))
            families["refused"].add_metric([channel], int(last.get("status") == "refused"))
            families["finished"].add_metric([channel], float(last.get("finished_at") or 0))
        yield from families.values()
