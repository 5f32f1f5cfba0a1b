"""Write a file from a background thread, one write behind the caller.

A conversion reads a chunk, casts it and writes it. Done in turn, the disk waits while a chunk is
read and cast, and the CPU waits while the kernel holds a write back until the disk catches up
(a 2 GB output is several seconds of that). :class:`WriteBehind` overlaps the two: a write is
handed to one thread and the call returns as soon as the *previous* write has finished, so the
next chunk is read and cast while this one goes to disk.

The caller's side of the bargain: a buffer given to :meth:`WriteBehind.write` must stay unchanged
until the next call to ``write`` has returned. Reading into two buffers in turn is enough (the
writer's pipeline does that). Every write is handed over, small ones too: copying small writes
into batches would end a write early and break that rule for the buffer the caller fills next.

Positions are kept here: ``tell`` and ``seek`` (which ``zipfile`` uses to rewrite a member's
header) only move where the next write lands, and the thread seeks when a write says so. Only
the thread touches the file until :meth:`WriteBehind.flush` or the end of the ``with`` block.
An error of a write (a full disk) is raised by the next call that waits for it.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

__all__ = ["WriteBehind"]


class WriteBehind:
    """A seekable binary file whose writes happen on one background thread.

    Example:
        >>> with open("out.bin", "wb") as f, WriteBehind(f) as out:
        ...     out.write(header)
        ...     out.write(chunk)  # returns once the header is written, while the chunk is
        # every write has finished (or raised) here
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.name = getattr(file, "name", None)
        self._position = file.tell()
        self._file_position = self._position  # where the thread's file is; touched by the thread only
        self._pending: Future[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeldoc-write")

    # -- the file interface zipfile and the writers use ------------------------------------------

    def write(self, data: Any) -> int:
        """Queue ``data`` at the current position; returns its length once the previous write is done."""
        size = memoryview(data).nbytes
        if size:
            self._wait()  # the previous write is done: its buffer may be reused from now on
            self._pending = self._thread.submit(self._write_at, data, self._position)
            self._position += size
        return size

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._position
        elif whence != os.SEEK_SET:
            raise OSError("WriteBehind seeks from the start or the current position only")
        self._position = offset
        return offset

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Wait until every write has reached the file (raising its error, if one failed), then flush it."""
        self._wait()
        self._file.flush()

    # -- the thread ---------------------------------------------------------------------------------

    def _write_at(self, data: Any, at: int) -> None:
        if at != self._file_position:
            self._file.seek(at)
        self._file.write(data)
        self._file_position = at + memoryview(data).nbytes

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    # -- lifetime ---------------------------------------------------------------------------------

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                self.flush()
            elif self._pending is not None:
                # Already failing: let the write in flight end (the file is closed and removed
                # next), and keep the first error rather than the write's.
                self._pending.exception()
        finally:
            self._thread.shutdown(wait=True)
