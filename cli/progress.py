"""A progress line without dependencies: redrawn in place on a terminal, periodic lines in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
TTY_REDRAW_SECONDS = 0.1
LOG_LINE_SECONDS = 5.0


class Progress:
    """`label [#####.....] 12/40 30%`; with no total, just the count so far."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 interactive: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        if interactive is None:
            interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interactive = interactive
        self.done = 0
        self._last_drawn_at = 0.0
        self._last_step = -1
        self._closed = False

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.interactive:
            if now - self._last_drawn_at >= TTY_REDRAW_SECONDS or self._complete():
                self.stream.write("\r" + self.render())
                self.stream.flush()
                self._last_drawn_at = now
            return
        step = self._tenth()
        if step != self._last_step or now - self._last_drawn_at >= LOG_LINE_SECONDS:
            self.stream.write(self.render() + "\n")
            self.stream.flush()
            self._last_step, self._last_drawn_at = step, now

    def close(self) -> None:
        """Leave the final state on screen and move to a new line."""
        if self._closed:
            return
        self._closed = True
        if self._last_drawn_at == 0.0:  # never started: nothing to leave on screen
            return
        if self.interactive:
            self.stream.write("\r" + self.render() + "\n")
        elif self._last_step != self._tenth():
            self.stream.write(self.render() + "\n")
        self.stream.flush()

    def render(self) -> str:
        if not self.total:
            return f"{self.label} {self.done}"
        filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        percent = 100 * self.done // self.total
        return f"{self.label} [{bar}] {self.done}/{self.total} {percent}%"

    def _complete(self) -> bool:
        return self.total is not None and self.done >= self.total

    def _tenth(self) -> int:
        """Which tenth of the way we are (or a count bucket with no total), for log lines."""
        if not self.total:
            return self.done // 100
        return 10 * self.done // self.total
