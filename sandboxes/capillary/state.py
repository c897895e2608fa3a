"""Everything one sandbox app instance owns, so several can run in one process (tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app

from .auth import Authenticator
from .calllog import CallLog
from .config import SandboxConfig, apply_fault_update
from .faults import FaultInjector, parse_fail_next
from .org import org_with
from .store import CustomerStore

EXTENSION_KEY = "capillary_sandbox"


@dataclass
class SandboxState:
    """Live config (replaced whole on change), the stores, and the clock they share."""

    startup: SandboxConfig
    clock: Callable[[], float]
    config: SandboxConfig = field(init=False)
    store: CustomerStore = field(init=False, default_factory=CustomerStore)
    calls: CallLog = field(init=False, default_factory=CallLog)
    faults: FaultInjector = field(init=False)
    auth: Authenticator = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.config = self.startup
        self.faults = FaultInjector(self.startup.seed, self.startup.fail_next)
        self.auth = Authenticator(self.clock)

    def reset(self) -> None:
        """Empty customers and calls; faults and accounts back to the startup config."""
        with self._lock:
            self.config = self.startup
            self.store.reset()
            self.calls.reset()
            self.faults.reset(self.startup.seed, self.startup.fail_next)

    def update_faults(self, changes: dict[str, Any]) -> None:
        """Apply fault fields (and a replacement ``fail_next`` queue); ValueError if invalid."""
        changes = dict(changes)
        fail_next = parse_fail_next(changes.pop("fail_next")) if "fail_next" in changes else None
        with self._lock:
            self.config = apply_fault_update(self.config, changes)
            if "seed" in changes:
                self.faults.reseed(self.config.seed)
            if fail_next is not None:
                self.faults.set_fail_next(fail_next)

    def set_accounts(self, accounts: list[str] | None) -> None:
        """Restrict multi-account sources to these accountIds (None = accept any)."""
        with self._lock:
            valid = None if accounts is None else {str(a) for a in accounts}
            self.config = replace(self.config, valid_accounts=valid)

    def update_org(self, changes: dict[str, Any]) -> None:
        """Change org switches (sandboxes.capillary.org); ValueError if one is invalid."""
        with self._lock:
            self.config = replace(self.config, org=org_with(self.config.org, changes))

    def fault_view(self) -> dict[str, Any]:
        """Current fault settings plus the unconsumed one-shot queue."""
        view = self.config.fault_view()
        view["fail_next"] = self.faults.pending_fail_next()
        return view


def get_state() -> SandboxState:
    """The sandbox state of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
