"""Open only regular files: a FIFO, a device (``/dev/zero``) or a socket is refused unread.

Reading ``/dev/zero`` never ends and opening a FIFO blocks until a writer comes, so the kind is
checked with ``os.stat`` (after links are resolved) before opening, and again on the open handle
(``O_NONBLOCK`` keeps the open itself from waiting on a FIFO swapped in between).
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

from ..errors import ModelReadError

__all__ = ["open_regular", "not_regular_reason"]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def not_regular_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file; only regular files are read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file; only regular files are read"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file; only regular files are read"
    return "is not a regular file; only regular files are read"


def open_regular(path: str, where: str | None = None, *, buffered: bool = True) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else raise :class:`ModelReadError`.

    Args:
        path: the path to open (already in the OS's native form).
        where: the path as the user gave it, for messages (default: ``path``).
        buffered: a buffered reader (for parsing) or the raw, unbuffered file (positioned reads).

    Raises:
        ModelReadError: not a regular file. ``OSError`` (missing, permission, and
            ``IsADirectoryError`` for a folder) is left to the caller, which words it for its context.
    """
    where = path if where is None else where
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", path)
    reason = not_regular_reason(mode)
    if reason:
        raise ModelReadError(f"{where}: {reason}")
    fd = os.open(path, _OPEN_FLAGS)
    try:
        reason = not_regular_reason(os.fstat(fd).st_mode)
        if reason:
            raise ModelReadError(f"{where}: {reason}")
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(raw) if buffered else raw
