"""Parse and validate a safetensors header (the reference parser's rules, our own messages)."""

from __future__ import annotations

import json
import math
import struct
from typing import BinaryIO

from ..dtypes import DTYPES
from ..errors import ModelReadError
from .tensor import TensorInfo

__all__ = ["MAX_HEADER_SIZE", "read_safetensors_header"]

MAX_HEADER_SIZE = 100_000_000  # the reference implementation's limit, in bytes


def read_safetensors_header(
    f: BinaryIO, file_size: int, where: str
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read and validate the header of an open safetensors file.

    Args:
        f: the file, opened in binary mode.
        file_size: its size in bytes.
        where: the path, for messages.

    Returns:
        ``(tensors, metadata)``: tensors in file order, keyed by name, and ``__metadata__``.

    Raises:
        ModelReadError: with a one-line message for each way the header can be wrong.
    """
    if file_size < 8:
        raise ModelReadError(f"{where}: too short to be a safetensors file ({file_size} bytes)")
    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_SIZE:
        raise ModelReadError(
            f"{where}: safetensors header length {n} is over the 100 MB limit; the file is damaged"
        )
    if 8 + n > file_size:
        raise ModelReadError(
            f"{where}: safetensors header length {n} runs past the end of the file "
            f"({file_size} bytes); the file is truncated or damaged"
        )
    raw = f.read(n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelReadError(f"{where}: safetensors header is not valid UTF-8; the file is damaged") from None
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelReadError(
            f"{where}: safetensors header is not valid JSON ({exc.msg} at character {exc.pos}); "
            "the file is damaged"
        ) from None
    if not isinstance(header, dict):
        raise ModelReadError(f"{where}: safetensors header is not a JSON object; the file is damaged")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelReadError(f"{where}: safetensors __metadata__ must map strings to strings")

    data_start = 8 + n
    entries = [_entry(key, value, where) for key, value in header.items()]
    entries.sort(key=lambda e: (e[1], e[2]))
    expected = 0
    tensors: dict[str, TensorInfo] = {}
    for key, begin, end, dtype, shape in entries:
        if begin != expected:
            kind = "overlaps the previous tensor" if begin < expected else "leaves a gap before it"
            raise ModelReadError(
                f"{where}: tensor '{key}' starts at byte {begin} of the data section, "
                f"expected {expected} ({kind}); the file is damaged"
            )
        expected = end
        tensors[key] = TensorInfo(key, dtype, shape, data_start + begin)
    if data_start + expected > file_size:
        raise ModelReadError(
            f"{where}: file is truncated: its tensors need {data_start + expected} bytes "
            f"but it has {file_size}"
        )
    if data_start + expected < file_size:
        raise ModelReadError(
            f"{where}: {file_size - data_start - expected} unexpected bytes after the last tensor; "
            "the file is damaged"
        )
    return tensors, metadata


def _entry(key: str, value: object, where: str) -> tuple[str, int, int, str, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise ModelReadError(f"{where}: safetensors entry '{key}' is not an object; the file is damaged")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPES:
        raise ModelReadError(f"{where}: tensor '{key}' has unsupported dtype {dtype!r}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ModelReadError(f"{where}: tensor '{key}' has an invalid shape {shape!r}; the file is damaged")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and o >= 0 for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise ModelReadError(
            f"{where}: tensor '{key}' has invalid data_offsets {offsets!r}; the file is damaged"
        )
    begin, end = offsets
    needed = math.prod(shape) * DTYPES[dtype].bits
    if needed % 8 or end - begin != needed // 8:
        raise ModelReadError(
            f"{where}: tensor '{key}' holds {end - begin} bytes but {dtype}{list(shape)} "
            f"needs {needed // 8}; the file is damaged"
        )
    return key, begin, end, dtype, tuple(shape)
