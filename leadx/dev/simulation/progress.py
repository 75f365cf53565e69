"""A progress bar for long runs on standard error: redrawn in place on a terminal, a line per tenth
otherwise (so a CI log stays short)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._started = time.monotonic()
        self._tty = self.stream.isatty()
        self._shown_tenth = -1
        self._shown_at = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        tenth = self.done * 10 // self.total
        now = time.monotonic()
        if self._tty and (now - self._shown_at >= 0.1 or self.done >= self.total):
            self._draw("\r", "")
            self._shown_at = now
        elif not self._tty and tenth != self._shown_tenth:
            self._draw("", "\n")
            self._shown_tenth = tenth

    def finish(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, start: str, end: str) -> None:
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = self.done / max(time.monotonic() - self._started, 1e-9)
        self.stream.write(f"{start}{self.label} [{bar:<30}] {share:4.0%} {self.done:,}/{self.total:,}"
                          f" ({rate:,.0f}/s){end}")
        self.stream.flush()
