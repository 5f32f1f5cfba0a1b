"""A string-valued enum that reads as its value everywhere.

``class X(str, enum.Enum)`` compares, hashes and serializes to JSON as its value, but ``str()``
and f-strings give ``X.NAME`` on some Python versions (3.11 changed ``format``). Identifiers that
end up in messages, dictionaries and JSON need the value in all of them: this is 3.11's
``enum.StrEnum`` for the 3.10 the WebUI runs on.
"""

from __future__ import annotations

import enum

__all__ = ["StrEnum"]


class StrEnum(str, enum.Enum):
    """An enum whose members are their string values (``str()`` and ``format()`` included)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)
