"""Start Flower for the linecap Celery app, refusing to expose it without basic auth.

`python -m workers.flower [flower options]`: needs FLOWER_BASIC_AUTH (user:password[,…]) unless
LINECAP_LOCAL_MODE=1 (the local dev stack on 127.0.0.1).
"""

from __future__ import annotations

import os
import sys


def flower_argv(environ: dict[str, str], extra: list[str]) -> list[str]:
    """The celery command line, or SystemExit with one line saying what is missing."""
    auth = environ.get("FLOWER_BASIC_AUTH", "").strip()
    local = environ.get("LINECAP_LOCAL_MODE") == "1"
    if not auth and not local:
        raise SystemExit("linecap: FLOWER_BASIC_AUTH is not set (user:password); Flower shows "
                         "every event and user id, so it does not start without it "
                         "(LINECAP_LOCAL_MODE=1 allows it on a laptop)")
    if auth and not all(":" in pair and pair.split(":", 1)[1] for pair in auth.split(",")):
        raise SystemExit("linecap: FLOWER_BASIC_AUTH must be user:password[,user2:password2]")
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower", *extra]
    if auth:
        argv.append(f"--basic-auth={auth}")
    return argv


def main() -> None:
    argv = flower_argv(dict(os.environ), sys.argv[1:])
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
