"""Progress reporting, and how a long job is stopped (the CLI, the WebUI's progress bar, tests).

Every long job takes one optional :data:`Progress` callback and calls it between chunks (tensors,
layers, files). That callback is also the one way to stop the job: it raises
:class:`~lib_modeldoc.errors.Cancelled`, which the job lets through after cleaning up (a write
leaves nothing behind). The CLI stops on Ctrl-C instead (``KeyboardInterrupt``), the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

__all__ = ["Progress", "Tracker"]

Progress = Callable[[int, int, str], None]
"""``progress(done, total, message)``: ``done``/``total`` in bytes (or steps), ``message`` for people.
May raise :class:`~lib_modeldoc.errors.Cancelled` to stop the job."""


class Tracker:
    """Counts work done and forwards it to a :data:`Progress` callback.

    ``what`` names the job: a :class:`~lib_modeldoc.errors.Cancelled` the callback raises comes
    out as ``"<what>: interrupted; nothing was written"``.
    """

    def __init__(self, total: int, progress: Progress | None = None, what: str = "") -> None:
        self.total = max(total, 1)
        self.done = 0
        self._progress = progress
        self._what = what

    def advance(self, amount: int, message: str = "") -> None:
        self.done += amount
        if self._progress is None:
            return
        try:
            self._progress(self.done, self.total, message)
        except Cancelled:
            raise (Cancelled.worded("error.interrupted_named", what=self._what) if self._what
                   else Cancelled.worded("error.interrupted")) from None
