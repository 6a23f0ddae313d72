"""A progress bar on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts work done out of a total; draws a bar on stderr only when it is a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, amount: int) -> None:
        """Count ``amount`` more units of work, redrawing at most ten times a second."""
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at > 0.1 or self.done >= self.total):
            self._drawn_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        width = 30
        filled = int(share * width)
        elapsed = now - self.started
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {share:6.1%} {elapsed:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
