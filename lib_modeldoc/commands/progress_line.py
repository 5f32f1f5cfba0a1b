"""A progress line on stderr for long jobs (only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time

from ..report.units import human_bytes


class _StderrLine:
    """One line on stderr, redrawn at most ten times a second (the last update always shows)."""

    _width = 80  # what ``finish`` blanks

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
        sys.stderr.write(self._text(now, done, total, message)[:120].ljust(80))
        sys.stderr.flush()

    def _text(self, now: float, done: int, total: int, message: str) -> str:
        raise NotImplementedError

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


class StderrProgress(_StderrLine):
    """``progress(done, total, message)`` for jobs counted in bytes: percent, bytes and rate."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._start = time.monotonic()

    def _text(self, now: float, done: int, total: int, message: str) -> str:
        rate = done / max(now - self._start, 1e-6)
        return (f"\r{self.label}: {100 * done / max(total, 1):5.1f}%  {human_bytes(done)} of {human_bytes(total)}  "
                f"{human_bytes(rate)}/s")


class StderrSteps(_StderrLine):
    """``progress(done, total, message)`` for jobs counted in steps: percent and the current step."""

    _width = 120

    def _text(self, now: float, done: int, total: int, message: str) -> str:
        return f"\r{self.label}: {100 * done / max(total, 1):5.1f}%  {message}"
