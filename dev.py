#!/usr/bin/env python3
"""The only entry point a fresh machine needs: `python3 dev.py up` or `python3 dev.py test`.

Standard library only, so it runs before anything is installed: it makes `.venv`, installs the
project into it (again only when pyproject.toml changed), then hands over to the tool asked for.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - runs before any 3.11-only code, on purpose
    sys.exit(
        "dev.py: linecap needs Python 3.11 or newer; this is Python "
        + ".".join(map(str, sys.version_info[:3]))
        + ". Install python3.11+ and run it with that (e.g. python3.11 dev.py up)."
    )

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".linecap-installed"
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "sandboxes" / "pyproject.toml",
              ROOT / "constraints-dev.txt")
# Every package at the version pinned in constraints-dev.txt (the same versions as the
# deployment's requirements.txt, plus the test tools): a new release cannot change a test run.
CONSTRAINTS = ROOT / "constraints-dev.txt"

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

commands:
  up [ARGS...]     install what is needed, then run the whole system (linecap up ARGS)
  test [ARGS...]   install, then run the tests (pytest ARGS; default: the whole suite, -q)
  lint             install, then ruff check
  install          only create .venv and install (done by the others when needed)

Everything goes into .venv/ in this folder; nothing else on the machine is touched.
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, args = argv[0], argv[1:]
    if command not in ("up", "test", "lint", "install"):
        print(f"dev.py: unknown command {command!r} (try: python3 dev.py --help)", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    try:
        ensure_installed()
    except SetupError as exc:
        print(f"dev.py: {exc}", file=sys.stderr)
        return 1
    if command == "up":
        return run([str(BIN / "linecap"), "up", *args])
    if command == "test":
        return run([str(PYTHON), "-m", "pytest", *(args or ["-q"])])
    if command == "lint":
        return run([str(PYTHON), "-m", "ruff", "check", ".", *args])
    return 0


class SetupError(Exception):
    """Something the user must fix before we can install; the message says what."""


def ensure_installed() -> None:
    """Create .venv if needed and install linecap with its dev extra (the sandboxes among it),
    at the pinned versions, when a pyproject.toml or the pins are newer than the last install."""
    if not PYTHON.exists():
        create_venv()
    newest = max(p.stat().st_mtime for p in PYPROJECTS)
    if STAMP.exists() and STAMP.stat().st_mtime >= newest:
        return
    print("dev.py: installing linecap and its dependencies into .venv (first run: a minute)")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if subprocess.run([*pip, "-c", str(CONSTRAINTS), "-e", "./sandboxes", "-e", ".[dev]"]
                      ).returncode != 0:
        raise SetupError("pip install -c constraints-dev.txt -e ./sandboxes -e '.[dev]' failed "
                         "(see above); fix it and run again")
    STAMP.write_text("installed from pyproject.toml; delete this file to force a reinstall\n")


def create_venv() -> None:
    if VENV.exists():
        raise SetupError(
            f"{VENV} exists but has no {PYTHON.relative_to(ROOT)} (made by another Python?): "
            "delete .venv and run again"
        )
    print(f"dev.py: creating .venv with Python {sys.version.split()[0]}")
    made = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(PYTHON), "-m", "pip", "--version"]
    if made.returncode != 0 or subprocess.run(pip, capture_output=True).returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        raise SetupError(
            "could not create a virtualenv with pip in it; on Debian/Ubuntu install the venv "
            f"module first (apt-get install python{sys.version_info[0]}.{sys.version_info[1]}-venv)"
        )


def run(argv: list[str]) -> int:
    """Replace this process with argv (signals and exit code go straight to it)."""
    if not Path(argv[0]).exists():
        print(f"dev.py: {argv[0]} is missing; delete {STAMP} and run again", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":
        return subprocess.run(argv).returncode
    os.execv(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
