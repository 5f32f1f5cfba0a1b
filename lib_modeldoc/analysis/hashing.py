"""Every hash the SD world uses for a file, computed in one read.

``sha256``, the WebUI's short hashes (AutoV1 legacy, AutoV2, AutoV3 "addnet"), CRC32 and, when
the ``blake3`` package is installed, BLAKE3 — the hashes Civitai and the WebUI show. The file is
read once, in large blocks, into a small ring of buffers; the full-file SHA-256, the data-section
SHA-256 (AutoV3) and CRC32 run in worker threads while the next blocks are read (hashlib, zlib and
libdeflate release the GIL). The two SHA-256 streams cannot share work, so the CPU time is twice
one SHA-256 pass (bench: 1.03x two streams side by side); with a second core free, the wall time
stays close to one pass. A SHA-256 a cache already holds (``known_sha256``) leaves one stream.

Definitions (``shared/reference/formats.md`` section 3):

* ``autov1``: SHA-256 of the 0x10000 bytes at offset 0x100000, first 8 hex. On a file shorter
  than 0x110000 bytes it hashes whatever that window holds, possibly nothing (so every file under
  1 MiB has ``e3b0c442``, the hash of no bytes) — exactly what the WebUI computes. Civitai shows
  no AutoV1 for files under 2 MiB; :meth:`FileHashes.civitai` follows that.
* ``autov2``: first 10 hex of ``sha256``.
* ``autov3``: SHA-256 of a safetensors file's data section (every byte after the 8-byte length
  and the header), first 12 hex; ``None`` when the bytes are not a safetensors file or its header
  length points past the end of the file. It does not change when only the metadata changes.
* ``crc32``: zlib CRC-32 of the whole file, 8 hex. Civitai prints its four bytes reversed.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import queue
import re
import struct
import threading
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ModelReadError
from ..io.positioned import PositionedFile
from ..io.sniff import Format, sniff_bytes
from ..progress import Progress
from .crc32 import crc32_combine, crc32_of

__all__ = ["FileHashes", "hash_file", "HashRing", "civitai_crc32", "crc32_combine", "AUTOV1_OFFSET", "AUTOV1_LENGTH"]

AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
CIVITAI_AUTOV1_MIN_SIZE = 0x200000  # Civitai returns no AutoV1 for smaller files
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
BLOCK_SIZE = 4 << 20  # with RING buffers, 16 MiB in flight: stays in L3 (measured best of 1-16 MiB)
RING = 4  # buffers in flight: lets the two hash threads drift apart by a few blocks


@dataclass(frozen=True)
class FileHashes:
    """The hashes of one file, as lower-case hex.

    Attributes:
        path: the path as given.
        size_bytes: bytes hashed.
        sha256: full-file SHA-256, 64 hex.
        autov1: the WebUI's legacy hash, 8 hex (see the module docstring for small files).
        autov2: first 10 hex of ``sha256``.
        autov3: SHA-256 of the safetensors data section, 12 hex; ``None`` for other files.
        crc32: zlib CRC-32, 8 hex.
        blake3: full-file BLAKE3, 64 hex; ``None`` when the ``blake3`` package is absent.
    """

    path: str
    size_bytes: int
    sha256: str
    autov1: str
    autov2: str
    autov3: str | None
    crc32: str
    blake3: str | None
    sha256_cached: bool = False  # sha256 (and so autov2) came from a hash cache, not from this read

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: ``path``, ``size_bytes`` and the six hashes (``None`` → null)."""
        out = asdict(self)
        del out["sha256_cached"]
        return out

    def civitai(self) -> dict[str, str | None]:
        """The forms Civitai shows and searches by: upper-case, CRC32 byte-reversed, no AutoV1
        for files under 2 MiB, no AutoV3 for non-safetensors files here."""
        return {
            "sha256": self.sha256.upper(),
            "autov1": self.autov1.upper() if self.size_bytes >= CIVITAI_AUTOV1_MIN_SIZE else None,
            "autov2": self.autov2.upper(),
            "autov3": self.autov3.upper() if self.autov3 else None,
            "crc32": civitai_crc32(self.crc32),
            "blake3": self.blake3.upper() if self.blake3 else None,
        }


def civitai_crc32(crc_hex: str) -> str:
    """Civitai's CRC32 form: the four bytes reversed, upper-case (``0d4a1185`` → ``85114A0D``)."""
    return bytes.fromhex(crc_hex)[::-1].hex().upper()


def hash_file(path: str | os.PathLike[str], *, progress: Progress | None = None,
              known_sha256: str | None = None) -> FileHashes:
    """Hash a file in a single read: SHA-256, AutoV1/V2/V3, CRC32 and (if installed) BLAKE3.

    Any file can be hashed; the format matters only for AutoV3, which is taken from the bytes
    (:func:`~lib_modeldoc.io.sniff.sniff_bytes`), not the name.

    Args:
        path: the file.
        progress: called as ``progress(done_bytes, total_bytes, message)`` as blocks (4 MiB)
            are done, from the calling thread (a :data:`~lib_modeldoc.progress.Progress`).
        known_sha256: the file's SHA-256 as a cache holds it for the file as it is now (the
            WebUI's): taken as is, so the read runs one SHA-256 stream (AutoV3) instead of two.
            Not 64 hex digits: ignored.

    Returns:
        A :class:`FileHashes`.

    Raises:
        ModelReadError: the path is missing, a directory, or cannot be read.

    Example:
        >>> hash_file("model.safetensors").autov2
        'a1b2c3d4e5'
    """
    where = os.fspath(path)
    try:
        with PositionedFile(where) as f:
            size = f.size()
            data_start = _data_start(f, size, where)
            known = known_sha256.lower() if known_sha256 and _SHA256_HEX.match(known_sha256) else None
            return _hash_stream(f, where, size, data_start, progress, known)
    except FileNotFoundError:
        raise ModelReadError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ModelReadError(f"{where}: is a directory, not a file") from None
    except PermissionError:
        raise ModelReadError(f"{where}: permission denied") from None
    except OSError as exc:
        raise ModelReadError(f"{where}: cannot be read ({exc.strerror or exc})") from None


def _data_start(f: PositionedFile, size: int, where: str) -> int | None:
    """Where a safetensors data section starts, or ``None`` when there is none to hash."""
    head = f.read_at(0, 512)
    if len(head) < 8 or sniff_bytes(head, where) is not Format.SAFETENSORS:
        return None
    (n,) = struct.unpack("<Q", head[:8])
    return 8 + n if 8 + n <= size else None  # a header length past EOF: damaged, no data section


def _hash_stream(f: PositionedFile, where: str, size: int, data_start: int | None, progress: Progress | None,
                 known_sha256: str | None = None) -> FileHashes:
    full = hashlib.sha256() if known_sha256 is None else None
    data = hashlib.sha256() if data_start is not None else None
    b3 = _blake3()
    # One thread per SHA-256 stream. With two, CRC-32 is split between them to even the load (the
    # first half of each block in one, the rest in the other; the pieces are joined at the end);
    # with one, the other thread takes all of it; with none, two threads share it.
    streams = [(h, skip) for h, skip in ((full, 0), (data, data_start or 0)) if h is not None]
    if len(streams) == 2:
        lanes = [_Lane(*streams[0], "first"), _Lane(*streams[1], "second")]
    elif streams:
        lanes = [_Lane(*streams[0], None), _Lane(None, 0, "all")]
    else:
        lanes = [_Lane(None, 0, "first"), _Lane(None, 0, "second")]
    if b3 is not None:
        lanes.append(_Lane(b3, 0, None))
    free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(_Slot(bytearray(BLOCK_SIZE), free))
    for lane in lanes:
        lane.start()
    window = bytearray()
    pos = 0
    try:
        while True:
            slot = free.get()  # a buffer every lane is done with
            if progress is not None and slot.end:
                progress(slot.end, max(size, pos), "hashing")
            length = f.readinto_at(slot.buffer, pos)
            if not length:
                break
            slot.arm(pos, length, len(lanes))
            _take_window(window, slot.buffer, pos, length)
            for lane in lanes:
                lane.queue.put(slot)
            pos += length
    finally:
        for lane in lanes:
            lane.queue.put(None)
        for lane in lanes:
            lane.join()
    for lane in lanes:
        if lane.error is not None:
            raise lane.error
    if progress is not None:
        progress(pos, max(size, pos), "hashing")
    crc = 0
    for pieces in zip(*(lane.crcs for lane in lanes if lane.crc_part is not None)):
        for part, length in pieces:
            crc = crc32_combine(crc, part, length)
    digest = full.hexdigest() if full is not None else known_sha256
    assert digest is not None
    return FileHashes(
        path=where,
        size_bytes=pos,
        sha256=digest,
        autov1=hashlib.sha256(window).hexdigest()[:8],
        autov2=digest[:10],
        autov3=data.hexdigest()[:12] if data is not None and data_start is not None and pos >= data_start else None,
        crc32=f"{crc:08x}",
        blake3=b3.hexdigest() if b3 is not None else None,
        sha256_cached=full is None,
    )


class HashRing:
    """Blocks read once and fed to several hashers, each in its own worker thread, while the next
    block is read: the same ring of buffers and lanes :func:`hash_file` runs on.

    Example:
        >>> with HashRing([hashlib.sha256(), hashlib.sha256()]) as ring:
        ...     block = ring.free_block()          # waits until every hasher is done with it
        ...     n = f.readinto(block.buffer)
        ...     ring.hash(block, n)                # the hashers take it in their threads
    """

    def __init__(self, hashers: list[Any], *, block_size: int = BLOCK_SIZE, ring: int = RING) -> None:
        self.block_size = block_size
        self._lanes = [_Lane(h, 0, None) for h in hashers]
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for _ in range(ring):
            self._free.put(_Slot(bytearray(block_size), self._free))
        self._pos = 0

    def __enter__(self) -> HashRing:
        for lane in self._lanes:
            lane.start()
        return self

    def free_block(self) -> _Slot:
        """A buffer (``.buffer``, ``block_size`` bytes) no hasher still reads."""
        return self._free.get()

    def hash(self, block: _Slot, length: int) -> None:
        """Hand the first ``length`` bytes of ``block`` to every hasher, after the earlier blocks."""
        block.arm(self._pos, length, len(self._lanes))
        for lane in self._lanes:
            lane.queue.put(block)
        self._pos += length

    def __exit__(self, *exc: object) -> None:
        for lane in self._lanes:
            lane.queue.put(None)
        for lane in self._lanes:
            lane.join()
        if exc[0] is None:
            for lane in self._lanes:
                if lane.error is not None:
                    raise lane.error


class _Slot:
    """One read buffer: handed to every lane, back on the free list when all are done with it."""

    def __init__(self, buffer: bytearray, free: queue.SimpleQueue[_Slot]) -> None:
        self.buffer = buffer
        self.pos = self.length = self.end = 0
        self._free = free
        self._pending = 0
        self._lock = threading.Lock()

    def arm(self, pos: int, length: int, users: int) -> None:
        self.pos, self.length, self.end, self._pending = pos, length, pos + length, users

    def release(self) -> None:
        with self._lock:
            self._pending -= 1
            done = not self._pending
        if done:
            self._free.put(self)


class _Lane(threading.Thread):
    """A worker: feeds ``hasher`` every block from byte ``skip`` of the file on, and takes the
    CRC-32 of each block's ``crc_part`` (``"first"`` or ``"second"`` half, ``"all"``, or None)."""

    def __init__(self, hasher: Any, skip: int, crc_part: str | None) -> None:
        super().__init__(name="modeldoc-hash", daemon=True)
        self.hasher = hasher
        self.skip = skip
        self.crc_part = crc_part
        self.queue: queue.SimpleQueue[_Slot | None] = queue.SimpleQueue()
        self.crcs: list[tuple[int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            slot = self.queue.get()
            if slot is None:
                return
            try:
                if self.error is None:
                    self._block(slot)
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                self.error = exc
            finally:
                slot.release()

    def _block(self, slot: _Slot) -> None:
        buffer, length = slot.buffer, slot.length
        if self.hasher is not None and slot.end > self.skip:
            with memoryview(buffer) as view:
                self.hasher.update(view[max(0, self.skip - slot.pos):length])
        if self.crc_part is not None:
            begin, end = {"first": (0, length // 2), "second": (length // 2, length), "all": (0, length)}[self.crc_part]
            self.crcs.append((crc32_of(buffer, begin, end), end - begin))


def _take_window(window: bytearray, buffer: bytearray, pos: int, length: int) -> None:
    """Collect the AutoV1 window's bytes as the blocks go by."""
    start = max(AUTOV1_OFFSET, pos)
    end = min(AUTOV1_OFFSET + AUTOV1_LENGTH, pos + length)
    if start < end:
        window += buffer[start - pos:end - pos]


def _blake3() -> Any:
    """A BLAKE3 hasher when the optional ``blake3`` package is installed, else ``None``."""
    try:
        module = importlib.import_module("blake3")
    except ImportError:
        return None
    return module.blake3()
