"""Every hash the SD world uses for a file, computed in one read.

``sha256``, the WebUI's short hashes (AutoV1 legacy, AutoV2, AutoV3 "addnet"), CRC32 and, when
the ``blake3`` package is installed, BLAKE3 — the hashes Civitai and the WebUI show. The file is
read once, in large blocks; the full-file SHA-256, the data-section SHA-256 (AutoV3) and CRC32
run in worker threads on the block just read while the next one is being read (hashlib and zlib
release the GIL on large buffers), so all of them together cost little more than one SHA-256.

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
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ModelReadError
from .io.sniff import Format, sniff_bytes

__all__ = ["FileHashes", "hash_file", "civitai_crc32", "crc32_combine", "AUTOV1_OFFSET", "AUTOV1_LENGTH"]

AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
CIVITAI_AUTOV1_MIN_SIZE = 0x200000  # Civitai returns no AutoV1 for smaller files
BLOCK_SIZE = 8 << 20  # two such buffers stay in L3 while one is read and the other hashed

HashProgress = Callable[[int, int], None]


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

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: ``path``, ``size_bytes`` and the six hashes (``None`` → null)."""
        return asdict(self)

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


def hash_file(path: str | os.PathLike[str], *, progress: HashProgress | None = None) -> FileHashes:
    """Hash a file in a single read: SHA-256, AutoV1/V2/V3, CRC32 and (if installed) BLAKE3.

    Any file can be hashed; the format matters only for AutoV3, which is taken from the bytes
    (:func:`~lib_modeldoc.io.sniff.sniff_bytes`), not the name.

    Args:
        path: the file.
        progress: called as ``progress(done_bytes, total_bytes)`` after each block (about every
            8 MiB) from the calling thread.

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
        with open(where, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            data_start = _data_start(f, size, where)
            return _hash_stream(f, where, size, data_start, progress)
    except FileNotFoundError:
        raise ModelReadError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ModelReadError(f"{where}: is a directory, not a file") from None
    except PermissionError:
        raise ModelReadError(f"{where}: permission denied") from None
    except OSError as exc:
        raise ModelReadError(f"{where}: cannot be read ({exc.strerror or exc})") from None


def _data_start(f: Any, size: int, where: str) -> int | None:
    """Where a safetensors data section starts, or ``None`` when there is none to hash."""
    head = os.pread(f.fileno(), 512, 0)
    if len(head) < 8 or sniff_bytes(head, where) is not Format.SAFETENSORS:
        return None
    (n,) = struct.unpack("<Q", head[:8])
    return 8 + n if 8 + n <= size else None  # a header length past EOF: damaged, no data section


def _hash_stream(f: Any, where: str, size: int, data_start: int | None, progress: HashProgress | None) -> FileHashes:
    full = hashlib.sha256()
    data = hashlib.sha256() if data_start is not None else None
    b3 = _blake3()
    window = bytearray()
    crc = 0
    buffers = [bytearray(BLOCK_SIZE), bytearray(BLOCK_SIZE)]
    with ThreadPoolExecutor(max_workers=3 if b3 is not None else 2, thread_name_prefix="modeldoc-hash") as pool:
        pos = 0
        length = _read_block(f, buffers[0])
        index = 0
        while length:
            view = memoryview(buffers[index % 2])[:length]
            futures = _submit(pool, view, pos, full, data, data_start, b3)
            index += 1
            next_length = _read_block(f, buffers[index % 2])  # overlaps the hashing of this block
            for part_crc, part_len in (fut.result() for fut in futures):
                if part_len:
                    crc = crc32_combine(crc, part_crc, part_len)
            _take_window(window, view, pos)
            view.release()
            pos += length
            length = next_length
            if progress is not None:
                progress(pos, max(size, pos))
    digest = full.hexdigest()
    return FileHashes(
        path=where,
        size_bytes=pos,
        sha256=digest,
        autov1=hashlib.sha256(window).hexdigest()[:8],
        autov2=digest[:10],
        autov3=data.hexdigest()[:12] if data is not None and data_start is not None and pos >= data_start else None,
        crc32=f"{crc:08x}",
        blake3=b3.hexdigest() if b3 is not None else None,
    )


def _submit(
    pool: ThreadPoolExecutor, view: memoryview, pos: int, full: Any, data: Any, data_start: int | None, b3: Any
) -> list[Future[tuple[int, int]]]:
    """Queue one block: one task per SHA-256 stream, CRC32 split between them to even the load."""
    length = len(view)
    tail = view[max(0, data_start - pos):] if data is not None and data_start is not None and pos + length > data_start else None
    # CRC-32 runs about 2.3x faster than SHA-256: give it to the task with less SHA work.
    split = length // 2 if tail is not None and len(tail) > length // 2 else 0
    futures = [
        pool.submit(_update, full, view, view[:split]),
        pool.submit(_update, data if tail is not None else None, tail, view[split:]),
    ]
    if b3 is not None:
        futures.append(pool.submit(_update, b3, view, None))
    return futures


def _update(hasher: Any, block: memoryview | None, crc_part: memoryview | None) -> tuple[int, int]:
    if hasher is not None and block is not None and len(block):
        hasher.update(block)
    if crc_part is None or not len(crc_part):
        return 0, 0
    return zlib.crc32(crc_part), len(crc_part)


def _read_block(f: Any, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``f``; fewer bytes only at the end of the file."""
    view = memoryview(buffer)
    got = 0
    while got < len(buffer):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    view.release()
    return got


def _take_window(window: bytearray, view: memoryview, pos: int) -> None:
    """Collect the AutoV1 window's bytes as the blocks go by."""
    start = max(AUTOV1_OFFSET, pos)
    end = min(AUTOV1_OFFSET + AUTOV1_LENGTH, pos + len(view))
    if start < end:
        window += view[start - pos:end - pos]


def _blake3() -> Any:
    """A BLAKE3 hasher when the optional ``blake3`` package is installed, else ``None``."""
    try:
        module = importlib.import_module("blake3")
    except ImportError:
        return None
    return module.blake3()


# CRC-32 combination (zlib's crc32_combine, which Python does not expose) ------------------------

_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial, in zlib's reflected bit order."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return table


_X2N = _x2n_table()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)`` (zlib's algorithm)."""
    p = 1 << 31  # x^0
    n, k = len2, 3  # multiply by x^(8 * len2)
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2
