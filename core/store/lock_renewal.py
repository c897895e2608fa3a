"""Keep the user locks a process holds alive while it works, from one daemon thread.

A lock's lease is what frees it when its holder dies (a SIGKILLed worker never releases), so
it should be short; but one Capillary step can take longer than a short lease (timeouts and
quick retries). The renewer pushes every held lock's expiry out a few times per lease for as
long as its holder lives, so neither has to give.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("linecap.locks")

RENEWALS_PER_LEASE = 3

Extend = Callable[[str, str], bool]  # (key, token) -> still ours


class LockRenewer:
    """The locks held by this process, renewed every lease / RENEWALS_PER_LEASE seconds."""

    def __init__(self, extend: Extend, lease_seconds: float) -> None:
        self._extend = extend
        self._interval = max(lease_seconds / RENEWALS_PER_LEASE, 0.05)
        self._held: dict[str, str] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_pid: int | None = None

    def hold(self, key: str, token: str) -> None:
        with self._guard:
            self._held[key] = token
            self._ensure_thread()

    def release(self, key: str) -> None:
        with self._guard:
            self._held.pop(key, None)

    def held(self) -> dict[str, str]:
        with self._guard:
            return dict(self._held)

    def renew_all(self) -> None:
        """One round: extend each held lock; one that is no longer ours is dropped, loudly."""
        for key, token in self.held().items():
            try:
                still_ours = self._extend(key, token)
            except Exception as exc:  # Redis unreachable: try again next round
                log.warning("could not renew a user lock", extra={"error": type(exc).__name__})
                continue
            if not still_ours:
                log.warning("user lock expired while held", extra={"lock": key})
                with self._guard:
                    if self._held.get(key) == token:
                        del self._held[key]

    def _ensure_thread(self) -> None:
        """One thread per process (a forked child starts its own). Caller holds the guard."""
        if self._thread is not None and self._thread_pid == os.getpid():
            return
        self._thread_pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="linecap-lock-renewer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.renew_all()
