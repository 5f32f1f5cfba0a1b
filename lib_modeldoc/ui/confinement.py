"""Which files a request to a listening tab may name: one rule for the WebUI routes and ``serve``.

A file the listing offers is allowed as listed, wherever its symbolic links lead (models kept on
another disk and linked in); any other path must resolve, links followed, inside an allowed folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Confinement", "within"]


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both already resolved and case-normalised)."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # another drive on Windows
        return False


@dataclass(frozen=True)
class Confinement:
    """The files a request may name: ``listed`` files, and files inside ``folders``."""

    listed: tuple[str, ...]
    folders: tuple[str, ...]

    def allows(self, path: str) -> bool:
        """``path`` (absolute) is a listed file, or resolves inside one of the folders.

        Raises:
            ValueError: ``path`` cannot be resolved (a NUL byte).
            OSError: resolving it failed.
        """
        plain = os.path.normcase(os.path.abspath(path))
        if any(plain == os.path.normcase(os.path.abspath(listed)) for listed in self.listed):
            return True  # as listed, wherever its links lead (models on another disk)
        real = os.path.normcase(os.path.realpath(path))
        return any(within(real, os.path.normcase(os.path.realpath(folder))) for folder in self.folders)
