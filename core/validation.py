"""The identifiers people type, import or send us: a mobile number, a LINE user id, a name.

Each check returns the problem in words (for CLI arguments, CSV reports and API answers alike),
so the message says what a valid value looks like instead of only "invalid".
"""

from __future__ import annotations

import re

# [0-9], not \d: \d also matches full-width and other scripts' digits ("６６８…"), which
# Capillary would store as a different mobile (or refuse).
_MOBILE = re.compile(r"\+?[0-9]{8,15}")
_LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")
MAX_NAME_LENGTH = 100


def is_line_user_id(value: object) -> bool:
    """`U` and 32 lowercase hex characters, as LINE documents user ids."""
    return isinstance(value, str) and _LINE_USER_ID.fullmatch(value) is not None


def is_mobile(value: object) -> bool:
    """8 to 15 ASCII digits, with an optional leading `+`."""
    return isinstance(value, str) and _MOBILE.fullmatch(value) is not None


def mobile_problem(value: str) -> str | None:
    if not value:
        return "mobile is empty"
    if not is_mobile(value):
        return "mobile must be 8 to 15 digits (0-9) with an optional leading + (e.g. 66812345678)"
    return None


def normalise_mobile(value: str) -> str:
    """The digits only: `+66812345678` and `66812345678` are the same person."""
    return value.strip().lstrip("+")


def line_user_id_problem(value: str) -> str | None:
    if not value:
        return "LINE user id is empty"
    if not is_line_user_id(value):
        return "LINE user id must be U followed by 32 lowercase hex characters"
    return None


def name_problem(value: str) -> str | None:
    if len(value) > MAX_NAME_LENGTH:
        return f"name is longer than {MAX_NAME_LENGTH} characters"
    return None
