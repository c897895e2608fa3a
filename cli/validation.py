"""The two identifiers people type or import: a mobile number and a LINE user id.

Each check returns the problem in words (for CLI arguments and per-row CSV reports alike), so
the message says what a valid value looks like instead of only "invalid".
"""

from __future__ import annotations

import argparse
import re

_MOBILE = re.compile(r"\+?\d{8,15}")
_LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")
MAX_NAME_LENGTH = 100


def mobile_problem(value: str) -> str | None:
    if not value:
        return "mobile is empty"
    if not _MOBILE.fullmatch(value):
        return "mobile must be 8 to 15 digits with an optional leading + (e.g. 66812345678)"
    return None


def normalise_mobile(value: str) -> str:
    """The digits only: `+66812345678` and `66812345678` are the same person."""
    return value.strip().lstrip("+")


def line_user_id_problem(value: str) -> str | None:
    if not value:
        return "LINE user id is empty"
    if not _LINE_USER_ID.fullmatch(value):
        return "LINE user id must be U followed by 32 lowercase hex characters"
    return None


def name_problem(value: str) -> str | None:
    if len(value) > MAX_NAME_LENGTH:
        return f"name is longer than {MAX_NAME_LENGTH} characters"
    return None


def mobile_arg(text: str) -> str:
    """argparse type: a valid mobile, normalised."""
    value = text.strip()
    problem = mobile_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}; got {text!r}")
    return normalise_mobile(value)


def line_user_id_arg(text: str) -> str:
    """argparse type: a well-formed LINE user id."""
    value = text.strip()
    problem = line_user_id_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}; got {text!r}")
    return value


def name_arg(text: str) -> str:
    value = text.strip()
    problem = name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value
