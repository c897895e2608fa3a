"""The local stack's environment, shared with CLI commands typed in another terminal.

`linecap up` writes `.linecap/local.env` (mode 0600: it holds the demo channel's secret); a
`linecap` command run without REDIS_URL in its environment reads it, so `linecap send-event`
talks to the running local system with no exports. A set variable always wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

LOCAL_ENV_FILE = Path(".linecap") / "local.env"
SHARED_PREFIXES = ("REDIS_URL", "CAPILLARY_", "LINE_", "LINECAP_", "PORT")


def write_local_env(environ: Mapping[str, str], path: Path = LOCAL_ENV_FILE) -> Path:
    lines = [f"{k}={v}" for k, v in sorted(environ.items())
             if k.startswith(SHARED_PREFIXES) and "\n" not in v]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def load_local_env(environ: MutableMapping[str, str] | None = None,
                   path: Path | None = None) -> bool:
    """Fill unset variables from the file when REDIS_URL is unset; True if it was read.

    LINECAP_LOCAL_ENV_FILE names another file (the tests point it nowhere).
    """
    env = os.environ if environ is None else environ
    path = path or Path(env.get("LINECAP_LOCAL_ENV_FILE", LOCAL_ENV_FILE))
    if env.get("REDIS_URL") or not path.is_file():
        return False
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key not in env:
            env[key] = value
    return True
