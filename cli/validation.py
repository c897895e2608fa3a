"""argparse types for the identifiers people type: the rules are core.validation's."""

from __future__ import annotations

import argparse

from core.validation import (
    line_user_id_problem,
    mobile_problem,
    name_problem,
    normalise_mobile,
)


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
