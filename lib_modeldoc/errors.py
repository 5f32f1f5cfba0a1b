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
]


class ModelDocError(Exception):
    """Base class of every error Model Doctor raises on purpose.

    ``str(error)`` is the fact; ``remedies`` (:class:`~lib_modeldoc.advice.Remedy` ids) say what the
    user can do, and each front end words them (``commands/wording.py``, ``ui/wording.py``).
    """

    def __init__(self, *args: object, remedy: object = None) -> None:
        super().__init__(*args)
        self.remedies: tuple = tuple(remedy) if isinstance(remedy, (tuple, list)) else ((remedy,) if remedy else ())


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
