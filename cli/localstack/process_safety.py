"""Children that cannot outlive their supervisor, even when it is killed with SIGKILL."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has Linux SIGTERM the child if the supervisor is killed (kill -9).

    Only from the main thread: the kernel ties the signal to the creating thread's life.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG

    return set_pdeathsig
