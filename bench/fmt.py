"""Number formatting and Markdown tables for the report."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def num(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return num(value, 2 if value < 10 else 1, "ms")


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def times(value: float | None) -> str:
    """A ratio as `12.3×` (linecap's figure divided by its baseline's)."""
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}×"
    if value >= 10:
        return f"{value:.1f}×"
    if value >= 0.1:
        return f"{value:.2f}×"
    return f"{value:.3f}×"


def mib(kib: float | None) -> str:
    return "n/a" if not kib else f"{kib / 1024:.1f} MiB"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
