"""Start Flower for the linecap Celery app, refusing to expose it without basic auth.

`python -m workers.flower [flower options]`: needs FLOWER_BASIC_AUTH (user:password[,…]) unless
LINECAP_LOCAL_MODE=1 (the local dev stack on 127.0.0.1).
"""

from __future__ import annotations

import os
import sys

from config import Settings, settings_or_exit


def flower_argv(settings: Settings, extra: list[str]) -> list[str]:
    """The celery command line, or SystemExit with one line saying what is missing."""
    auth = settings.flower_basic_auth
    if not auth and not settings.local_mode:
        raise SystemExit("linecap: FLOWER_BASIC_AUTH is not set (user:password); Flower shows "
                         "every event and user id, so it does not start without it "
                         "(LINECAP_LOCAL_MODE=1 allows it on a laptop)")
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower", *extra]
    if auth:
        argv.append(f"--basic-auth={auth}")
    return argv


def main() -> None:
    argv = flower_argv(settings_or_exit(), sys.argv[1:])
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
