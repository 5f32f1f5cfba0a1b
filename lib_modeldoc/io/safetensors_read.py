"""Parse and validate a safetensors header (the reference parser's rules, our own messages)."""

from __future__ import annotations

import json
import math
import struct
from typing import BinaryIO

from ..dtypes import DTYPES
from ..errors import LimitExceededError, ModelReadError
from . import limits
from .tensor import TensorInfo, shape_problem

__all__ = ["MAX_HEADER_SIZE", "read_safetensors_header"]

MAX_HEADER_SIZE = limits.MAX_HEADER_BYTES  # the reference implementation's limit, in bytes


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
    _check_header_counts(raw, where)
    count_numbers = _numbers_bound(raw) > limits.MAX_HEADER_NUMBERS
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelReadError(f"{where}: safetensors header is not valid UTF-8; the file is damaged") from None
    del raw
    try:
        if count_numbers:
            header = json.loads(text, parse_int=_NumberCounter(int, where), parse_float=_NumberCounter(float, where))
        else:  # cannot hold too many numbers: parsed at C speed, no hook per number
            header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelReadError(
            f"{where}: safetensors header is not valid JSON ({exc.msg} at character {exc.pos}); "
            "the file is damaged"
        ) from None
    except RecursionError:
        raise ModelReadError(f"{where}: safetensors header nests too deeply; the file is damaged") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ModelReadError(f"{where}: safetensors header is not valid JSON ({_first_line(exc)}); the file is damaged") from None
    del text
    if not isinstance(header, dict):
        raise ModelReadError(f"{where}: safetensors header is not a JSON object; the file is damaged")
    count = len(header) - ("__metadata__" in header)
    if count > limits.MAX_TENSORS:
        raise LimitExceededError(
            f"{where}: safetensors header lists {count:,} tensors, over the limit of {limits.MAX_TENSORS:,}"
        )

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelReadError(f"{where}: safetensors __metadata__ must map strings to strings")
    for text in (*metadata.keys(), *metadata.values(), *header.keys()):
        if not _encodable(text):
            raise ModelReadError(
                f"{where}: safetensors header holds text that is not valid Unicode "
                f"(a lone surrogate in {text.encode('utf-8', 'backslashreplace').decode('ascii', 'replace')[:60]!r}); "
                "the file is damaged"
            )

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


def _check_header_counts(raw: bytes, where: str) -> None:
    """Refuse, before parsing, a header whose containers or strings would cost far more than its text.

    Parsed JSON costs up to ~25 times its text (``[[],[],...]``, ``{"k1":"","k2":"",...}``); both
    counts are upper bounds found at C speed: every list/object starts with a bracket, every
    string with a quote that no backslash precedes.
    """
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > limits.MAX_HEADER_CONTAINERS:
        raise LimitExceededError(
            f"{where}: safetensors header holds {containers:,} lists and objects, over the limit of "
            f"{limits.MAX_HEADER_CONTAINERS:,} ({limits.MAX_TENSORS:,} tensors); the file is damaged or hostile"
        )
    strings = (raw.count(b'"') - raw.count(b'\\"') + 1) // 2
    if strings > limits.MAX_HEADER_STRINGS:
        raise LimitExceededError(
            f"{where}: safetensors header holds about {strings:,} strings, over the limit of "
            f"{limits.MAX_HEADER_STRINGS:,}; the file is damaged or hostile"
        )


def _numbers_bound(raw: bytes) -> int:
    """At most how many numbers ``raw`` can hold: each JSON value ends at a ``,``, ``]``, ``}`` or the end."""
    return raw.count(b",") + raw.count(b"]") + raw.count(b"}") + 1


class _NumberCounter:
    """A json number hook that counts numbers and stops the parse past the limit."""

    def __init__(self, convert: type, where: str) -> None:
        self._convert, self._where, self._left = convert, where, limits.MAX_HEADER_NUMBERS

    def __call__(self, text: str) -> int | float:
        self._left -= 1
        if self._left < 0:
            raise LimitExceededError(
                f"{self._where}: safetensors header holds more than {limits.MAX_HEADER_NUMBERS:,} numbers, "
                "over the limit; the file is damaged or hostile"
            )
        return self._convert(text)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _entry(key: str, value: object, where: str) -> tuple[str, int, int, str, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise ModelReadError(f"{where}: safetensors entry '{key}' is not an object; the file is damaged")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ModelReadError(f"{where}: tensor '{key}' has unsupported dtype {_short(dtype)}")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise ModelReadError(f"{where}: tensor '{key}' has an invalid shape {_short(shape)}; the file is damaged")
    problem = shape_problem(shape)
    if problem:
        raise ModelReadError(f"{where}: tensor '{key}' has {problem}; the file is damaged")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int and 0 <= o < 1 << 63 for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise ModelReadError(
            f"{where}: tensor '{key}' has invalid data_offsets {_short(offsets)}; the file is damaged"
        )
    begin, end = offsets
    needed = math.prod(shape) * DTYPES[dtype].bits
    if needed % 8 or end - begin != needed // 8:
        raise ModelReadError(
            f"{where}: tensor '{key}' holds {end - begin} bytes but {dtype}{list(shape)} "
            f"needs {needed // 8}; the file is damaged"
        )
    return key, begin, end, dtype, tuple(shape)


def _short(value: object) -> str:
    """A value from the file, as at most 60 characters of repr (a list can be any length)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
