"""The one exception hierarchy of Model Doctor.

Every error a user can cause (a damaged file, a hostile pickle, a wrong part, an output that
cannot be written) is a :class:`ModelDocError` whose message is a single line that says what is
wrong and, where it helps, what to do. The CLI prints it as ``modeldoc: error: <message>``.
"""

from __future__ import annotations

__all__ = [
    "ModelDocError",
    "ModelReadError",
    "UnsafeCheckpointError",
    "LimitExceededError",
    "IncompatibleComponentError",
    "OutputError",
    "PlanError",
    "MissingDependencyError",
    "Cancelled",
]


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c != 0x09} | {0x0A: "\\n", 0x0D: "\\r"}


def _one_line(message: str) -> str:
    """The message with control characters escaped, so it prints as one line whatever it quotes."""
    return message.translate(_CONTROL)


class ModelDocError(Exception):
    """Base class of every error Model Doctor raises on purpose.

    ``str(error)`` is the fact; ``remedies`` (:class:`~lib_modeldoc.report.advice.Remedy` ids) say what the
    user can do, and each front end words them (``commands/wording.py``, ``ui/wording.py``).
    """

    def __init__(self, *args: object, remedy: object = None) -> None:
        if args and isinstance(args[0], str):  # names from a file (tensor keys) may hold newlines
            args = (_one_line(args[0]), *args[1:])
        super().__init__(*args)
        self.remedies: tuple = tuple(remedy) if isinstance(remedy, (tuple, list)) else ((remedy,) if remedy else ())
        self.message_id: str | None = None
        self.params: dict = {}

    @classmethod
    def worded(cls, message_id: str, *, remedy: object = None, **params: object) -> ModelDocError:
        """An error from the message catalogue (:mod:`lib_modeldoc.report.messages`): ``str()`` is the
        English (the CLI's ``modeldoc: error:`` line, logs); ``message_id`` + ``params`` let the tab word
        it in its language."""
        from .report.messages import Language, text

        error = cls(text(message_id, Language.EN, **params), remedy=remedy)
        error.message_id, error.params = message_id, dict(params)
        return error


class ModelReadError(ModelDocError):
    """The file is missing, unreadable, damaged or not a model file."""


class UnsafeCheckpointError(ModelReadError):
    """A pickle names a global outside the allowlist; nothing in it was run."""


class IncompatibleComponentError(ModelDocError):
    """A component does not fit the model it is offered to (e.g. SD1 CLIP into SDXL)."""


class OutputError(ModelDocError):
    """The output cannot be written; the source and any existing file are untouched."""


class PlanError(ModelDocError):
    """The requested edit is contradictory or cannot be carried out on this model."""


class MissingDependencyError(ModelDocError):
    """An optional feature needs a package that is not installed (the message names it)."""


class LimitExceededError(ModelReadError):
    """The file asks for more than a documented limit (``lib_modeldoc/io/limits.py``, README "Limits")."""


class Cancelled(ModelDocError):
    """The job was interrupted on request (its progress callback raised this); no output was written."""
