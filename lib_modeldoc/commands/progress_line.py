"""A progress line on stderr for long jobs (only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time

from ..units import human_bytes


class StderrProgress:
    """``progress(done, total, message)`` that redraws one line at most ten times a second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        rate = done / max(now - self._start, 1e-6)
        line = f"\r{self.label}: {100 * done / max(total, 1):5.1f}%  {human_bytes(done)} of {human_bytes(total)}  {human_bytes(rate)}/s"
        sys.stderr.write(line[:120].ljust(80))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


class StderrSteps:
    """``progress(done, total, message)`` for jobs counted in steps: percent and the current step."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        line = f"\r{self.label}: {100 * done / max(total, 1):5.1f}%  {message}"
        sys.stderr.write(line[:120].ljust(80))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 120 + "\r")
            sys.stderr.flush()
