"""Reads at an offset that several threads can share, on every OS.

Every tensor read goes through :class:`PositionedFile`. Where the OS has ``os.pread`` and
``os.preadv`` (Linux, macOS, the BSDs) each read names its offset and no file position is
shared, so the scan and hash threads read side by side. Windows has neither: there a lock
makes ``seek`` + ``readinto`` one step on an unbuffered handle. The lock only covers the copy
out of the OS cache; what the threads do with the bytes (numpy reductions, hashing) still runs
in parallel, and measured on Linux with ``os.pread`` removed the scan runs as fast as with it
(see ``bench/README.md``).

Only calls Windows documents are used on the fallback path: ``open``, ``FileIO.seek``,
``FileIO.readinto``, ``FileIO.read`` and ``threading.Lock``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .paths import native_path
from .regular import open_regular

__all__ = ["PositionedFile", "HAS_PREAD", "HAS_PREADV", "strategy"]

HAS_PREAD = hasattr(os, "pread")
HAS_PREADV = hasattr(os, "preadv")

# One read call moves at most this much: Linux caps read/pread near 2 GiB and Windows' read()
# takes a 32-bit count, so larger requests are split (and short reads continued) here.
_MAX_READ = 1 << 30


def strategy() -> str:
    """``"pread"`` or ``"locked seek"``: how this Python reads at an offset."""
    return "pread" if HAS_PREAD else "locked seek"


class PositionedFile:
    """A file opened for reading at offsets, safe to share between threads.

    Short results happen only at the end of the file; callers decide whether that is damage.

    Example:
        >>> with PositionedFile("model.safetensors") as f:
        ...     head = f.read_at(0, 8)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # Regular files only: a FIFO or /dev/zero is refused before it is read (ModelReadError).
        self._file: Any = open_regular(native_path(self.path), self.path, buffered=False)
        self._fd = self._file.fileno()
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def size(self) -> int:
        """The file's current size in bytes."""
        return os.fstat(self._fd).st_size

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only at the end of the file."""
        if length <= 0:
            return b""
        pieces: list[bytes] = []
        got = 0
        while got < length:
            piece = self._read_once(offset + got, min(length - got, _MAX_READ))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto_at(self, buffer: Any, offset: int) -> int:
        """Fill ``buffer`` (a writable buffer) from ``offset``; returns the bytes read, fewer only at EOF."""
        with memoryview(buffer) as whole, whole.cast("B") as view:
            got = 0
            while got < len(view):
                n = self._readinto_once(view[got : got + _MAX_READ], offset + got)
                if not n:
                    break
                got += n
            return got

    def _read_once(self, offset: int, length: int) -> bytes:
        if HAS_PREAD:
            return os.pread(self._fd, length, offset)
        with self._lock:
            self._file.seek(offset)
            return self._file.read(length) or b""

    def _readinto_once(self, view: memoryview, offset: int) -> int:
        if HAS_PREADV:
            return os.preadv(self._fd, [view], offset)
        with self._lock:
            self._file.seek(offset)
            return self._file.readinto(view) or 0

    def close(self) -> None:
        """Release the handle (on Windows an open handle stops the file being renamed or deleted)."""
        self._file.close()

    def __enter__(self) -> PositionedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PositionedFile({self.path!r}{', closed' if self.closed else ''})"
