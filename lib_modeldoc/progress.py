"""Progress reporting and cancellation for long jobs (the CLI, the WebUI's progress bar, tests)."""

from __future__ import annotations

from collections.abc import Callable

from .errors import ModelDocError

__all__ = ["Progress", "Cancel", "Cancelled", "Tracker"]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, message)``: ``done``/``total`` in bytes (or steps), ``message`` for people."""

Cancel = Callable[[], bool]
"""``cancel() -> bool``: polled between chunks; ``True`` stops the job (nothing is written)."""


class Cancelled(ModelDocError):
    """The job was interrupted on request; no output was written."""


class Tracker:
    """Counts work done, forwards it to a :data:`Progress` callback and polls :data:`Cancel`."""

    def __init__(self, total: int, progress: Progress | None = None, cancel: Cancel | None = None, what: str = "") -> None:
        self.total = max(total, 1)
        self.done = 0
        self._progress = progress
        self._cancel = cancel
        self._what = what

    def advance(self, amount: int, message: str = "") -> None:
        self.done += amount
        if self._cancel is not None and self._cancel():
            raise Cancelled(f"{self._what}: interrupted; nothing was written" if self._what else "interrupted; nothing was written")
        if self._progress is not None:
            self._progress(self.done, self.total, message)
