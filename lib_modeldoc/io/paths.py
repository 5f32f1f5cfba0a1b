"""Paths as the OS needs them: Windows' 260-character limit, without changing what users see.

Windows refuses paths of ``MAX_PATH`` (260) characters or more unless long paths are enabled
in the registry, which most installs have not done. The extended-length form (``\\\\?\\C:\\...``
or ``\\\\?\\UNC\\server\\share\\...``) is accepted everywhere. :func:`native_path` adds it to the
long paths handed to ``open``, ``os.stat``, ``tempfile.mkstemp`` and ``os.replace``; messages
keep the path as the user gave it. Elsewhere paths pass through untouched.
"""

from __future__ import annotations

import ntpath
import os

__all__ = ["native_path", "same_file", "LONG_PATH"]

# CreateDirectory's limit (MAX_PATH less room for an 8.3 file name); files allow 259 characters.
LONG_PATH = 248
_PREFIX = "\\\\?\\"


def native_path(path: str | os.PathLike[str], *, os_name: str = os.name) -> str:
    """``path`` in the form this OS opens: on Windows, long paths get the ``\\\\?\\`` prefix.

    Example:
        >>> native_path("C:\\\\models\\\\" + "x" * 300, os_name="nt")[:8]
        '\\\\\\\\?\\\\C:\\\\mo'
    """
    where = os.fspath(path)
    if os_name != "nt" or where.startswith(_PREFIX) or where.startswith("\\\\.\\"):
        return where
    full = ntpath.abspath(where) if os.name == "nt" else ntpath.normpath(where)
    if len(full) < LONG_PATH or not ntpath.isabs(full):
        return where
    if full.startswith("\\\\"):  # \\server\share\... -> \\?\UNC\server\share\...
        return _PREFIX + "UNC\\" + full[2:]
    return _PREFIX + full


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same real path, or the same file through a hard link."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(native_path(a), native_path(b))
    except OSError:
        return False
