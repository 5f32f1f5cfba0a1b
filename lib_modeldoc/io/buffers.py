"""Read buffers used in turn, so a piece can be written while the next one is read."""

from __future__ import annotations

__all__ = ["BufferRing"]


class BufferRing:
    """``count`` buffers of ``size`` bytes handed out one after the other.

    A piece read into one buffer stays intact while the next ``count - 1`` pieces fill the
    others: with two, a chunk can be on its way to disk (see ``io.write_behind``) while the
    next is read. The ring is shared across tensors, so the turn carries over from one to the next.
    """

    def __init__(self, size: int, count: int = 2) -> None:
        if size <= 0 or count <= 0:
            raise ValueError("a buffer ring needs a size and a count above zero")
        self._buffers = [bytearray(size) for _ in range(count)]
        self._turn = 0

    def __len__(self) -> int:
        """The size of each buffer (what one piece may hold)."""
        return len(self._buffers[0])

    def next(self) -> bytearray:
        """The buffer whose turn it is; it is handed out again ``count`` calls later."""
        buffer = self._buffers[self._turn]
        self._turn = (self._turn + 1) % len(self._buffers)
        return buffer
