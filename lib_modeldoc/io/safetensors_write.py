"""Stream tensors into a safetensors file: header first, then data, one tensor at a time."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ..dtypes import DTYPES

__all__ = ["OutTensor", "build_header", "header_size", "write_safetensors"]


@dataclass(frozen=True)
class OutTensor:
    """One tensor to write: name, dtype code, shape, and how to produce its bytes when needed.

    ``chunks()`` yields the tensor's bytes in order, in pieces of any size, so that writing
    never holds more than one piece in memory.
    """

    key: str
    dtype: str
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[bytes]] = lambda: ()  # header-only uses need no data

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def build_header(tensors: Iterable[OutTensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """The 8-byte length and JSON header for tensors stored back to back in the given order.

    The header is compact JSON, ``__metadata__`` first, padded with spaces to a multiple of 8
    so that the data section starts aligned (as the reference writer does since v0.3.1).
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.key] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw


class HeaderEntry(Protocol):
    """What the header says of a tensor (an :class:`OutTensor`, or a convert plan's entry)."""

    key: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int: ...


def header_size(tensors: Iterable[HeaderEntry], metadata: Mapping[str, str] | None = None) -> int:
    """``len(build_header(tensors, metadata))``, counted without building the JSON.

    ``inspect`` asks every file how big its pruned copy would be; for ~2,500 tensors counting
    is several times quicker than encoding. Keys must be distinct (a plan's always are).
    """
    body = 2  # the braces
    if metadata:
        body += len(json.dumps({"__metadata__": dict(metadata)}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) - 2
    count = 1 if metadata else 0
    offset = 0
    shape_sizes: dict[tuple[int, ...], int] = {}
    for t in tensors:
        key = t.key
        if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
            body += len(key) + 2
        else:  # escapes or multi-byte characters: let json say how long it is
            body += len(json.dumps(key, ensure_ascii=False).encode("utf-8"))
        size = shape_sizes.get(t.shape)
        if size is None:
            size = shape_sizes[t.shape] = len(",".join(map(str, t.shape)))
        end = offset + t.nbytes
        body += _ENTRY_FIXED + len(t.dtype) + size + len(str(offset)) + len(str(end))
        offset = end
        count += 1
    body += max(0, count - 1)  # commas between entries
    return 8 + body + (-body % 8)


# ':{"dtype":"' '","shape":[' '],"data_offsets":[' ',' ']}' around the variable parts of an entry
_ENTRY_FIXED = len(':{"dtype":"') + len('","shape":[') + len('],"data_offsets":[') + len(",") + len("]}")


def write_safetensors(
    f: BinaryIO,
    tensors: list[OutTensor],
    metadata: Mapping[str, str] | None = None,
    on_chunk: Callable[[OutTensor, bytes], None] | None = None,
) -> int:
    """Write ``tensors`` to ``f``; returns the bytes written. Memory stays near one chunk.

    ``on_chunk(tensor, data)`` is called after each piece is written (progress, hashing).
    """
    header = build_header(tensors, metadata)
    f.write(header)
    done = 0
    for t in tensors:
        written = 0
        for data in t.chunks():
            f.write(data)
            written += len(data)
            if on_chunk is not None:
                on_chunk(t, data)
        if written != t.nbytes:
            raise ValueError(f"tensor '{t.key}': produced {written} bytes, expected {t.nbytes}")
        done += written
    return len(header) + done
